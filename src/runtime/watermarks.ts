/**
 * The watermarks the runtime learnt, written to `device_streams` in batches: each raise is queued,
 * and a periodic flush writes every device raised since the last one in one call. A failed write
 * puts its marks back for the next flush (the coalescing flush the agent's receipts use too).
 */
import type { Logger } from 'pino';
import { CoalescingFlush } from '../coalescing-flush.ts';
import type { Clock, DeliveryStore } from '../ports.ts';
import type { Emit } from './events.ts';

const asMarks = (chunk: Array<[string, number]>) => chunk.map(([deviceId, seq]) => ({ deviceId, seq }));

export class WatermarkWriter {
  /** the highest watermark queued for writing, per device */
  private readonly queuedMarks = new Map<string, number>();
  /** watermarks not yet written to device_streams, the highest per device; written by `flush`, put back when that fails */
  private readonly pending: CoalescingFlush<string, number, number>;

  constructor(d: { store: Pick<DeliveryStore, 'advanceWatermarks'>; emit: Emit; log: Logger; clock: Clock }) {
    this.pending = new CoalescingFlush<string, number, number>({
      clock: d.clock,
      merge: (pending, seq) => Math.max(seq, pending ?? 0),
      items: (seq) => [seq],
      // the store's own promise (no async wrapper): the write starts in this turn, as it always did
      write: (chunk) => d.store.advanceWatermarks(asMarks(chunk)),
      onWritten: (chunk) => d.emit('watermarks.stored', { marks: asMarks(chunk) }),
      onError: (err) => d.log.warn({ err: err.message }, 'could not store watermarks; will retry'),
    });
  }

  /** The device's watermark is now `wm`: queued when it is above the last one queued. */
  raise(deviceId: string, wm: number): void {
    if (wm > (this.queuedMarks.get(deviceId) ?? 0)) {
      this.queuedMarks.set(deviceId, wm);
      this.pending.add(deviceId, wm);
    }
  }

  readonly flush = (): Promise<void> => this.pending.flushNow();
}
