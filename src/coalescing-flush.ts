/**
 * A coalescing flush: items are added under a key (a device) and merged into what is pending for
 * it; a flush takes everything pending and writes it, and puts back whatever could not be written,
 * to go with the next flush. What both sides batch: the agent its applied receipts (seq ranges),
 * the runtime its watermarks (the highest per device).
 *
 * - `add(key, item)` merges the item into its key's pending value and, with `delayMs`, arms a flush
 *   that many ms later (once: later adds ride with it).
 * - `flushNow()` cancels that timer and flushes now. Flushes are independent: one that hangs in its
 *   write does not hold the next (pending values are taken out at the start).
 * - A batch is written in chunks of at most `maxItems` items, one after the other; a chunk whose
 *   write rejects is put back (merged into what is pending meanwhile) and the next chunk goes on.
 *   After such a failure, with `retryMs`, a flush is armed that many ms later (until `stop()`).
 * - `written()` resolves once every item added so far is written: with the first flush that
 *   takes it and writes every chunk (a flush that fails hands its waiters to the next one).
 * - `drain()` flushes now and resolves once that flush and every one in flight are done.
 * - `stop()`: no retry from now on; a failed write waits for the next add or flushNow.
 */
import type { Clock } from './ports.ts';

export interface CoalescingFlushOptions<K, V, I> {
  clock: Clock;
  /** folds an item into its key's pending value (undefined: none yet); may change `pending` in place */
  merge(pending: V | undefined, item: I): V;
  /** the items a pending value stands for, in the order they are written */
  items(value: V): I[];
  /** writes one chunk; a rejection puts the chunk back */
  write(chunk: Array<[K, I]>): Promise<void>;
  /** a chunk was written */
  onWritten?(chunk: Array<[K, I]>): void;
  /** a chunk could not be written (it is put back) */
  onError?(err: Error, chunk: Array<[K, I]>): void;
  /** arm a flush this many ms after an add (none: flushes only when asked) */
  delayMs?: number;
  /** arm a flush this many ms after a failed one (none: the next add or flushNow retries) */
  retryMs?: number;
  /** items per write (default: all of them) */
  maxItems?: number;
}

export class CoalescingFlush<K, V, I> {
  private readonly pending = new Map<K, V>();
  /** resolvers of `written()` promises, for the next flush to settle */
  private waiting: Array<() => void> = [];
  private timer: { cancel(): void } | null = null;
  private readonly flushing = new Set<Promise<void>>();
  private retrying = true;

  constructor(private readonly o: CoalescingFlushOptions<K, V, I>) {}

  /** keys with something pending */
  get size(): number {
    return this.pending.size;
  }

  add(key: K, item: I): void {
    this.pending.set(key, this.o.merge(this.pending.get(key), item));
    if (this.o.delayMs !== undefined) this.schedule(this.o.delayMs);
  }

  /** Resolves once every item added so far is written. */
  written(): Promise<void> {
    return new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  flushNow(): Promise<void> {
    this.timer?.cancel();
    this.timer = null;
    const p = this.flush();
    this.flushing.add(p);
    // bookkeeping only: the caller gets `p` and its rejection; this chain must not leave one unhandled
    void p.finally(() => this.flushing.delete(p)).catch(() => {});
    return p;
  }

  /** Flushes now; resolves once this flush and every one in flight are done. */
  drain(): Promise<unknown> {
    return Promise.all([...this.flushing, this.flushNow()]);
  }

  stop(): void {
    this.retrying = false;
  }

  private schedule(ms: number): void {
    // a timed flush has no caller: what it writes failed is put back; a throwing onWritten is the host's own (its listener), not ours to crash on
    this.timer ??= this.o.clock.setTimeout(() => void this.flushNow().catch(() => {}), ms);
  }

  private async flush(): Promise<void> {
    if (this.pending.size === 0) return;
    const items: Array<[K, I]> = [];
    for (const [key, value] of this.pending) for (const item of this.o.items(value)) items.push([key, item]);
    this.pending.clear();
    const waiting = this.waiting;
    this.waiting = [];
    const max = this.o.maxItems ?? Math.max(1, items.length);
    let failed = false;
    for (let i = 0; i < items.length; i += max) {
      const chunk = items.slice(i, i + max);
      const written = this.o.onWritten && (() => this.o.onWritten!(chunk));
      await this.o.write(chunk).then(written, (err: Error) => {
        failed = true;
        for (const [key, item] of chunk) this.pending.set(key, this.o.merge(this.pending.get(key), item));
        this.o.onError?.(err, chunk);
      });
    }
    if (!failed) for (const resolve of waiting) resolve();
    else {
      this.waiting.push(...waiting);
      if (this.retrying && this.o.retryMs !== undefined) this.schedule(this.o.retryMs);
    }
  }
}
