/**
 * What a device lane may send under the runtime's line order (`LineOrder`, src/ports.ts: its doc
 * comment is the contract) and its own refusal: pure functions, no I/O, no time.
 *
 * A lane is held (`Hold`) by
 * - a pause (`order.paused`): nothing goes, whatever is queued;
 * - its own refusal of seq S (onPermanent=block): nothing above S goes until an order releases S
 *   (`releasedThrough >= S`) or orders a retry of S. A grant that says nothing of S (the runtime
 *   has not heard of the block yet) does not free it: the refusal is the lane's, not the order's;
 * - an order's block (`blockedAt = S > releasedThrough`, no retry of S): nothing above S goes, even
 *   when this agent never saw S (it took the line over after a failover);
 * - a retry ordered (`retry = { seq: S, n }`, S > releasedThrough) and not yet acted on here:
 *   nothing above S goes until a delivery of S arrives; that one goes first, even though the lane
 *   settled S itself (dead-lettered it): it is the retry, not a redelivery. A retry is acted on once
 *   per (seq, n): the lane remembers the last one whose outcome was final (`retried`).
 * Messages below the seq a lane is held at go as usual (redelivery skip, anomaly, send); a delivery
 * of the seq it is held at waits with the rest, whoever settled it: it may be the operator's retry,
 * published before the grant that orders it reached this agent (the two travel apart), and acked
 * unsent it would be lost. Once the line is released it goes as usual (a redelivery to skip), once
 * a retry is ordered it goes as the retry; surplus copies are skipped as redeliveries after that.
 * One exception: while the lane's own refusal of S could not be recorded (its dead letter failed,
 * S went back to the broker), the copy of S that comes back records that dead letter again (the
 * device is not asked again), else nobody would ever learn of the block.
 */
import type { Delivery, LineOrder } from '../ports.ts';

/** The lane's own block: the device refused `seq` here under onPermanent=block. `recorded`: its dead letter is recorded (else S went back to the broker). */
export interface Refusal {
  seq: number;
  status: number | null;
  response: string | null;
  reason: string;
  /** the device's refusal as the dead letter gives it (`reason` is the lane's report) */
  answer: string;
  /** the n of the operator's retry it refused (null: a first refusal) */
  retry: number | null;
  since: number;
  recorded: boolean;
}

/** One operator retry of a device's refused seq: `n` rises with each retry of that device. */
export interface RetryKey {
  seq: number;
  n: number;
}

/** What holds a lane back now (see the header). */
export interface Hold {
  paused: boolean;
  /** nothing above this seq goes (null: no block), and why */
  at: { seq: number; by: 'refusal' | 'order' | 'retry' } | null;
  /** the retry to send first (ordered, not yet acted on here) */
  retry: RetryKey | null;
}

/** What the lane does with one delivery: send it as usual (after the redelivery check), send it as the ordered retry, record its refusal's dead letter again, or hold it (null). */
export type Step = 'send' | 'retry' | 'record';

const sameRetry = (a: RetryKey | null, b: RetryKey | null): boolean => a !== null && b !== null && a.seq === b.seq && a.n === b.n;

/** The hold of a lane under `order` (null: none), with its own `refusal` and the last retry it acted on. */
export function holdOf(order: LineOrder | null, refusal: Refusal | null, retried: RetryKey | null): Hold {
  const released = order?.releasedThrough ?? 0;
  const ordered = order?.retry ?? null;
  const retry = ordered !== null && ordered.seq > released && !sameRetry(ordered, retried) ? ordered : null;
  const blocks: Array<NonNullable<Hold['at']>> = [];
  if (retry) blocks.push({ seq: retry.seq, by: 'retry' });
  // a retry of S supersedes the refusal of S until its outcome is final (then `refusal` is set anew, or cleared)
  if (refusal && refusal.seq > released && refusal.seq !== retry?.seq) blocks.push({ seq: refusal.seq, by: 'refusal' });
  // an order's block of S stands while no retry of S is ordered: with one, the retry (pending) or the outcome this lane saw (acted on) says how S stands
  const blockedAt = order?.blockedAt ?? null;
  if (blockedAt !== null && blockedAt > released && ordered?.seq !== blockedAt) blocks.push({ seq: blockedAt, by: 'order' });
  const at = blocks.reduce<Hold['at']>((low, b) => (low === null || b.seq < low.seq ? b : low), null);
  return { paused: order?.paused ?? false, at, retry };
}

/** The lane's own refusal under a new order: released once the order releases its seq. */
export function refusalUnder(refusal: Refusal | null, order: LineOrder | null): Refusal | null {
  return refusal !== null && refusal.seq <= (order?.releasedThrough ?? 0) ? null : refusal;
}

/** What one delivery of `seq` may do under `hold` (null: it waits), with the lane's own `refusal`. */
export function stepFor(hold: Hold, seq: number, refusal: Refusal | null = null): Step | null {
  if (hold.paused) return null;
  const at = hold.at;
  // the retry goes first, unless the line is held below it (a block of a lower seq)
  if (hold.retry !== null && seq === hold.retry.seq) return at !== null && at.seq < seq ? null : 'retry';
  if (at?.by === 'refusal' && seq === at.seq && refusal?.seq === seq && !refusal.recorded) return 'record';
  // the seq the line is held at waits too (see the header), and everything above it
  return at === null || seq < at.seq ? 'send' : null;
}

/** The first delivery of the queue (in arrival order) that may go now, and how; null: the lane waits. */
export function nextStep(queue: readonly Delivery[], hold: Hold, refusal: Refusal | null = null): { d: Delivery; step: Step } | null {
  if (hold.paused) return null;
  for (const d of queue) {
    const step = stepFor(hold, d.message!.seq, refusal);
    if (step !== null) return { d, step };
  }
  return null;
}

/** The deliveries a lane holds back: how many, and the lowest seq among them (0: none). */
export function heldBack(queue: readonly Delivery[]): { seq: number; count: number } {
  let seq = 0;
  for (const d of queue) if (seq === 0 || d.message!.seq < seq) seq = d.message!.seq;
  return { seq, count: queue.length };
}
