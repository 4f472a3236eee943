/**
 * The agent's receipts: what it tells the runtime it applied and what it dead-lettered, sealed
 * with its key and sent under the epoch of its newest lease (the runtime takes a receipt only from
 * the agent that epoch was granted to).
 *
 * Applied receipts name exactly the seqs applied per device since the last flush, as ranges, in
 * batches (`CoalescingFlush`); a seq applied as an operator's retry goes in a range of its own that
 * names the retry (`retry: n`), so the runtime can tell it from a seq skipped as applied before. The runtime counts a seq as applied only when a receipt names it, so
 * a receipt that could not be sent is sent again, and each message is acked only once its receipt
 * is out (`applied` resolves then). Dead letters go one by one, and are confirmed before the
 * message is acked; one that blocks the device's line says so (`blocked`: the runtime records the
 * block as a line order, so that it outlives this agent).
 */
import type { Logger } from 'pino';
import { CoalescingFlush } from '../coalescing-flush.ts';
import type { Broker, Clock, DeadLetter } from '../ports.ts';
import { SeqRanges, type SeqRange } from '../seq-ranges.ts';
import { MAX_RECEIPT_RANGES, type ReceiptEvent } from '../side-channel.ts';
import { seal } from '../trust.ts';
import type { DeadLetterKind } from './dead-letters.ts';

export interface ReceiptsOptions {
  agentId: string;
  agentKey: Buffer;
  broker: Pick<Broker, 'publishEvent'>;
  clock: Clock;
  log: Logger;
  /** the epoch of the newest lease, read when a receipt goes out */
  lease: { readonly epoch: number };
  /** ms an applied seq may wait for the rest of its batch */
  flushMs: number;
}

export interface Receipts {
  /** Reports a seq as applied (`retry`: as the operator's retry n of it); resolves once its receipt is out. */
  applied(deviceId: string, seq: number, retry?: number | null): Promise<void>;
  /** Reports a dead letter (logged); resolves once its receipt is out, rejects when it could not be sent. `blocking`: the receipt says the agent holds the device's line at it. */
  /** `retry`: the n of the operator's retry this refusal answers (null: none) */
  deadLetter(entry: DeadLetter, kind: DeadLetterKind, retry?: number | null): Promise<void>;
  /** Before the queue goes back: receipts out, so their messages are acked rather than handed on (bounded: a hung broker call must not hold the release). */
  beforeRelease(): Promise<unknown>;
  /** The agent stops: a receipt that could not be sent is not tried again on its own. */
  stop(): void;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** what is pending for one device: runs of applied seqs, and the seqs applied as retries (seq → n) */
interface Pending {
  ranges: SeqRanges;
  retries: Map<number, number>;
}
type Item = SeqRange & { retry?: number };

function merge(p: Pending = { ranges: new SeqRanges(), retries: new Map() }, r: Item): Pending {
  if (r.retry !== undefined) p.retries.set(r.from, r.retry);
  else p.ranges.addRange(r.from, r.to);
  return p;
}

const items = (p: Pending): Item[] => [...p.ranges.list(), ...[...p.retries].map(([seq, n]) => ({ from: seq, to: seq, retry: n }))];

export function createReceipts(o: ReceiptsOptions): Receipts {
  const send = (r: DistributiveOmit<ReceiptEvent, 'epoch'>) => o.broker.publishEvent('receipts', seal(o.agentKey, 'receipts', o.agentId, { ...r, epoch: o.lease.epoch }));
  const pending = new CoalescingFlush<string, Pending, Item>({
    clock: o.clock,
    merge,
    items,
    write: (chunk) => send({ type: 'applied', agentId: o.agentId, ranges: chunk.map(([deviceId, r]) => ({ deviceId, ...r })) }),
    onError: (err, chunk) => o.log.warn({ err: err.message, ranges: chunk.length }, 'could not publish receipts; sending them again shortly (their messages stay unacked meanwhile)'),
    delayMs: o.flushMs,
    retryMs: Math.max(o.flushMs, 1000),
    maxItems: MAX_RECEIPT_RANGES,
  });
  return {
    applied(deviceId, seq, retry = null) {
      pending.add(deviceId, retry === null ? { from: seq, to: seq } : { from: seq, to: seq, retry });
      return pending.written();
    },
    async deadLetter(entry, kind, retry = null) {
      o.log.error({ deviceId: entry.deviceId, seq: entry.seq, reason: entry.reason, status: entry.status, kind, retry }, 'message dead-lettered');
      await send({ type: 'dead-letter', agentId: o.agentId, entry, anomaly: kind === 'anomaly', blocked: kind === 'blocking', retry });
    },
    beforeRelease() {
      let timer: { cancel(): void } | null = null;
      const gaveUp = new Promise<void>((resolve) => (timer = o.clock.setTimeout(resolve, 1000)));
      return Promise.race([pending.drain(), gaveUp]).finally(() => timer?.cancel());
    },
    stop: () => pending.stop(),
  };
}
