/**
 * One device lane's loop: it takes the next delivery the lane may send (line-orders.ts), waits for
 * the lease, sends it, retries a transient failure (capped backoff, the lane held meanwhile) and
 * settles the outcome: applied (acked, reported), refused for good (dead-lettered; under
 * onPermanent=block the line is then held at it until a line order frees it), fenced (handed to
 * the agent, which gives its queue back). A message is acked only once its outcome is final; on a
 * device that reports its watermark, one applied is acked once its receipt is out (a crash in
 * between hands it to the next agent, which skips and reports it). A device that does not report
 * its watermark would apply such a redelivery twice, so there the ack comes at once and a crash may
 * lose the receipt.
 *
 * Skipping is exact: a message is acked unsent only when it is a known redelivery: a seq this lane
 * settled itself (kept as ranges; also above its watermark, a seq it dead-lettered), or one at or below its
 * `baseline`, what others were known to have applied when its epoch began (the device's watermark
 * then, or the watermark of the grant that brought the epoch). Anything else below the watermark
 * (a reused seq, a message that overtook another) is an anomaly: dead-lettered with the reason and
 * raised as an `anomaly` event, never dropped silently. Residual imprecision: below the baseline a
 * reused seq cannot be told from a redelivery (a device reports only its highest seq). An ordered
 * retry is no redelivery: it is sent even though the lane (or the one before it) settled its seq.
 * That bookkeeping is lane-marks.ts; recording dead letters (and requeueing one that could not be
 * recorded) is dead-letters.ts; the lanes as a whole (taking work, orders, give-back) device-lanes.ts.
 */
import type { Logger } from 'pino';
import { backoff, delay } from '../clock.ts';
import type { Clock, DeadLetter, Delivery, DeviceClient, DeviceConfig, DeviceOutcome, LineOrder, WireMessage } from '../ports.ts';
import type { DeadLetterKind, DeadLetters } from './dead-letters.ts';
import { FLOWING, blockedReason, retrying, standing, type LaneCondition } from './lane-condition.ts';
import { LaneMarks } from './lane-marks.ts';
import { holdOf, nextStep, refusalUnder, stepFor, type Hold, type Refusal, type RetryKey, type Step } from './line-orders.ts';

export type PermanentPolicy = 'block' | 'skip';

export interface LaneOptions {
  agentId: string;
  devices: ReadonlyMap<string, DeviceConfig>;
  client: DeviceClient;
  clock: Clock;
  logger: Logger;
  onPermanent: PermanentPolicy;
  retryInitialMs: number;
  retryMaxMs: number;
  /** jitter source for the retry backoff (seeded in the simulation) */
  random?: () => number;
  /** the right to write: resolves with the epoch to write under once the lease is valid */
  lease: { acquire(): Promise<number> };
  /** why a message is not the runtime's (its mac, src/trust.ts), or null: one that is not is dead-lettered unread */
  authenticate?(m: WireMessage): string | null;
  /**
   * reports a seq as applied (batched by the caller; `retry`: applied as the operator's retry n of
   * it, which the receipt names); when it returns a promise, the message is
   * acked once that resolves (its receipt is out), so a crash in between hands it to the next
   * agent, which reports it, instead of losing the report
   */
  applied(deviceId: string, seq: number, retry?: number | null): Promise<void> | void;
  /** records a dead letter durably (`blocking`: the refusal holds the line; `anomaly`: not the device's refusal, see the header); the message is acked only after it resolves */
  deadLetter(entry: DeadLetter, kind: DeadLetterKind, retry?: number | null): Promise<void>;
  /** the device said this agent's epoch is stale */
  fenced(deviceId: string, outcome: DeviceOutcome): void;
}

export interface Lane {
  deviceId: string;
  queue: Delivery[];
  running: boolean;
  /** flowing, retrying a message, paused, or blocked (lane-condition.ts): what it reports */
  condition: LaneCondition;
  /** what it knows applied on its device: watermark, baseline, its own settled seqs (lane-marks.ts) */
  marks: LaneMarks;
  /** the runtime's order for this line, from the newest grant taken (null: none) */
  order: LineOrder | null;
  /** the device refused a seq here under onPermanent=block: the line is held there until an order frees it */
  refusal: Refusal | null;
  /** the last ordered retry whose outcome was final here: each (seq, n) is sent once */
  retried: RetryKey | null;
}

export function newLane(deviceId: string): Lane {
  return { deviceId, queue: [], running: false, condition: FLOWING, marks: new LaneMarks(), order: null, refusal: null, retried: null };
}

/** What the loop needs of the lanes it runs in. */
export interface LoopHost {
  /** false once the lanes stopped taking work (a give-back, a stop): nothing more is sent or retried */
  taking(): boolean;
  /** resolves (with null) when the lanes stop taking work: waits for a lease or a retry end at once */
  interrupted(): Promise<null>;
  deadLetters: DeadLetters;
  emit(event: string, payload: unknown): void;
}

export class LaneLoop {
  constructor(
    private readonly o: LaneOptions,
    private readonly host: LoopHost,
  ) {}

  hold(lane: Lane): Hold {
    return holdOf(lane.order, lane.refusal, lane.retried);
  }

  /** The delivery that goes next and how, or null: the lane waits (line-orders.ts). */
  next(lane: Lane): { d: Delivery; step: Step } | null {
    return nextStep(lane.queue, this.hold(lane), lane.refusal);
  }

  /** The condition it reports under its hold: `own` is flowing, or retrying a message. */
  restate(lane: Lane, own: LaneCondition): void {
    lane.condition = standing(lane.deviceId, own, lane.condition, this.hold(lane), lane.refusal, this.o.clock.now());
  }

  private take(lane: Lane, d: Delivery): void {
    lane.queue.splice(lane.queue.indexOf(d), 1);
  }

  async drain(lane: Lane): Promise<void> {
    for (let next = this.next(lane); next !== null && this.host.taking(); next = this.next(lane)) {
      const { d, step } = next;
      const m = d.message!;
      if (step === 'record') await this.recordAgain(lane, d, m);
      else if (step === 'send' && lane.marks.redelivery(m.seq) !== null) await this.redelivered(lane, d, m);
      else if (!(await this.send(lane, d, m, step))) return; // giving back: left in the lane, returned with the subscription
    }
  }

  /** The refused message whose dead letter could not be recorded came back: its dead letter is recorded now (blocking), the device not asked again. */
  private async recordAgain(lane: Lane, d: Delivery, m: WireMessage): Promise<void> {
    const r = lane.refusal!;
    this.take(lane, d);
    if (!(await this.deadLetter(lane, d, m, r.answer, r.status, r.response, 'blocking', lane.marks.epoch, r.retry))) return; // back to the broker once more
    lane.marks.settle(m.seq);
    if (lane.refusal === r) lane.refusal = { ...r, recorded: true, reason: blockedReason(m.deviceId, m.seq, { reason: r.answer, response: r.response }, true) };
    this.restate(lane, FLOWING);
  }

  /** A seq at or below the watermark: skipped when settled here or applied before this epoch, else an anomaly (see the header). */
  private async redelivered(lane: Lane, d: Delivery, m: WireMessage): Promise<void> {
    const known = lane.marks.redelivery(m.seq);
    this.take(lane, d);
    if (known === 'settled-here') {
      d.ack(); // its receipt is out or on its way
      this.host.emit('skipped', { deviceId: m.deviceId, seq: m.seq });
    } else if (known === 'before-epoch') {
      // applied before this epoch (the device or the grant says so): reported applied, as the
      // agent that applied it may have died before its receipt went out
      this.ackWhenReported(lane, d, this.o.applied(m.deviceId, m.seq));
      this.host.emit('skipped', { deviceId: m.deviceId, seq: m.seq });
    } else await this.anomaly(lane, d, m);
  }

  /**
   * Sends one delivery, as usual or as the ordered retry (not checked as a redelivery: this lane,
   * or the one before it, settled that seq itself), and settles its outcome. False when the lanes
   * stopped taking work: it stays in the lane, for the subscription to return.
   */
  private async send(lane: Lane, d: Delivery, m: WireMessage, step: 'send' | 'retry'): Promise<boolean> {
    const device = this.o.devices.get(m.deviceId);
    if (!device) {
      // under a lease, like every outcome: its dead letter names the epoch the runtime checks it by
      const epoch = await Promise.race([this.o.lease.acquire(), this.host.interrupted()]);
      if (epoch === null || !this.host.taking()) return false;
      this.take(lane, d);
      await this.deadLetter(lane, d, m, `device ${m.deviceId} is not in this agent's devices file`, null, null, 'rejected', epoch);
      return true;
    }
    const retry = step === 'retry' ? this.hold(lane).retry : null;
    const outcome = await this.deliver(lane, d, device, m, step);
    if (outcome === null) return false;
    this.restate(lane, FLOWING); // no longer retried (a rejection may block it below)
    if (outcome === 'held') return true; // an order paused the line or changed how this goes: decided again
    if (outcome !== 'known' && outcome !== 'answer-lost' && outcome.kind === 'fenced') {
      // kept: it goes out again under a newer lease, or back to the broker (a retry is not acted on yet)
      this.o.fenced(m.deviceId, outcome);
      return true;
    }
    if (retry) this.retryDone(lane, retry);
    // the device has it: skipped (reported applied) on the next turn; a retried seq at once, as the retry's
    if (outcome === 'known' && !retry) return true;
    this.take(lane, d);
    // answer-lost: this lane's own write, whose answer it lost: applied, once
    if (outcome === 'known' || outcome === 'answer-lost' || outcome.kind === 'applied') this.appliedHere(lane, d, m, retry?.n ?? null);
    else if (outcome.kind === 'permanent') await this.refused(lane, d, m, outcome, retry);
    return true;
  }

  /** The ordered retry's outcome is final: not sent again for this (seq, n); the refusal it answered is over (refused again: a new one). */
  private retryDone(lane: Lane, retry: RetryKey): void {
    lane.retried = retry;
    if (lane.refusal?.seq === retry.seq) lane.refusal = null;
    this.restate(lane, FLOWING);
  }

  /** The device refused the message for good: dead-lettered; under onPermanent=block the line is held at it, and its receipt says so. */
  private async refused(lane: Lane, d: Delivery, m: WireMessage, outcome: Extract<DeviceOutcome, { kind: 'permanent' }>, retry: RetryKey | null): Promise<void> {
    // an order that released this seq already (skipped while it was on the wire) leaves nothing to hold
    const blocks = this.o.onPermanent === 'block' && m.seq > (lane.order?.releasedThrough ?? 0);
    const recorded = await this.deadLetter(lane, d, m, outcome.reason, outcome.status, outcome.response, blocks ? 'blocking' : 'rejected', lane.marks.epoch, retry?.n ?? null);
    if (recorded) lane.marks.settle(m.seq);
    if (blocks) this.block(lane, m, outcome, recorded, retry?.n ?? null);
  }

  /** onPermanent=block: nothing after the rejected message is sent until a line order releases it or orders it sent again (line-orders.ts). */
  private block(lane: Lane, m: WireMessage, outcome: Extract<DeviceOutcome, { kind: 'permanent' }>, recorded: boolean, retry: number | null): void {
    const reason = blockedReason(m.deviceId, m.seq, outcome, recorded);
    lane.refusal = refusalUnder({ seq: m.seq, status: outcome.status, response: outcome.response, reason, answer: outcome.reason, since: this.o.clock.now(), recorded, retry }, lane.order);
    this.restate(lane, FLOWING);
    if (lane.refusal === null) return;
    const frees = `baton unblock ${m.deviceId} --retry (after fixing the device) or --skip`;
    this.o.logger.error({ deviceId: m.deviceId, seq: m.seq, status: outcome.status, reason }, `device rejected a message: its line is blocked until an operator frees it: ${frees}`);
    this.host.emit('blocked', { deviceId: m.deviceId, seq: m.seq, reason });
  }

  /**
   * Sends until the outcome is final (applied, permanent, fenced). Every attempt waits for a valid
   * lease and writes under its epoch; a new epoch first asks the device for its watermark, and the
   * lease is checked again after that answer (it may have lapsed meanwhile, e.g. across a pause).
   * Before each attempt the lane's orders are read again: `held` when they paused the line or
   * changed how this message goes. Null when the lanes stopped taking work (nothing more is sent
   * or retried), `known` when the device already has it.
   *
   * A transient answer may hide a write that went through (a timeout, a connection dropped after
   * the request): on a device that reports its watermark, the retry waits until the device says
   * whether it has the seq (`answer-lost`: it does, this lane's write), so nothing is written twice;
   * an ordered retry skipped meanwhile asks it too, so that an attempt that went through is reported.
   */
  private async deliver(lane: Lane, d: Delivery, device: DeviceConfig, m: WireMessage, step: 'send' | 'retry'): Promise<DeviceOutcome | 'known' | 'answer-lost' | 'held' | null> {
    let unsure = false; // an earlier attempt of this epoch may have been applied
    for (let attempt = 1; ; ) {
      const epoch = await Promise.race([this.o.lease.acquire(), this.host.interrupted()]);
      if (epoch === null || !this.host.taking()) return null;
      if (stepFor(this.hold(lane), m.seq, lane.refusal) !== step) {
        const has = unsure && step === 'retry' && epoch === lane.marks.epoch && lane.marks.reportsWatermark && ((await this.o.client.watermark(device)) ?? 0) >= m.seq;
        return has ? 'answer-lost' : 'held';
      }
      if (unsure && epoch === lane.marks.epoch && lane.marks.reportsWatermark) {
        const wm = await this.o.client.watermark(device);
        if (wm !== null && wm >= m.seq) return 'answer-lost';
        if (wm !== null) unsure = false;
        else if ((await this.retryWait(lane, m, attempt++, 'the device did not say whether it applied the last attempt')) === null) return null;
        continue;
      }
      if (epoch !== lane.marks.epoch) {
        lane.marks.beginEpoch(epoch);
        const wm = await this.o.client.watermark(device);
        lane.marks.deviceAnswered(wm);
        // for the ordered retry only the device's own word counts: the grant's watermark covers its dead letter
        if (step === 'retry' ? wm !== null && wm >= m.seq : m.seq <= lane.marks.lastApplied) return 'known';
        continue;
      }
      const outcome = await this.o.client.send(device, m, epoch);
      if (outcome.kind !== 'transient') return outcome;
      unsure = true;
      if ((await this.retryWait(lane, m, attempt++, outcome.reason)) === null) return null;
    }
  }

  /** Waits the backoff before the next attempt (logged at the first and every tenth); null when the lanes stopped taking work. */
  private async retryWait(lane: Lane, m: WireMessage, attempt: number, reason: string): Promise<true | null> {
    this.restate(lane, retrying(lane.condition, m.seq, attempt, reason, this.o.clock.now()));
    const wait = backoff(attempt, this.o.retryInitialMs, this.o.retryMaxMs, this.o.random);
    if (attempt === 1 || attempt % 10 === 0) {
      this.o.logger.warn({ deviceId: m.deviceId, seq: m.seq, attempt, reason, retryInMs: wait }, 'device delivery failed; retrying, its line is held');
    }
    this.host.emit('retry', { deviceId: m.deviceId, seq: m.seq, attempt, reason });
    if ((await Promise.race([delay(this.o.clock, wait), this.host.interrupted()])) === null || !this.host.taking()) return null;
    return true;
  }

  /** `retry`: the n of the operator's retry it was sent as (null: none) */
  private appliedHere(lane: Lane, d: Delivery, m: WireMessage, retry: number | null = null): void {
    lane.marks.appliedHere(m.seq);
    this.ackWhenReported(lane, d, this.o.applied(m.deviceId, m.seq, retry));
    this.host.emit('applied', { deviceId: m.deviceId, seq: m.seq });
  }

  private ackWhenReported(lane: Lane, d: Delivery, report: Promise<void> | void): void {
    if (report && lane.marks.reportsWatermark) void report.then(() => d.ack());
    else d.ack();
  }

  /** A message at or below the watermark that is no known redelivery: never sent (it would write out of order), never dropped silently. */
  private async anomaly(lane: Lane, d: Delivery, m: WireMessage): Promise<void> {
    const { lastApplied: watermark, baseline } = lane.marks;
    const reason =
      `seq ${m.seq} is at or below device ${m.deviceId}'s applied watermark ${watermark} but was never applied here ` +
      `(nor known applied before this lease: up to ${baseline}): a seq was reused or a message overtook another; not sent`;
    this.o.logger.error({ deviceId: m.deviceId, seq: m.seq, watermark, baseline }, 'delivery anomaly: a message below the watermark that nobody applied; dead-lettered, not sent');
    const ok = await this.deadLetter(lane, d, m, reason, null, null, 'anomaly');
    if (ok) {
      lane.marks.settle(m.seq);
      this.host.emit('anomaly', { deviceId: m.deviceId, seq: m.seq, watermark, reason });
    }
  }

  /** `epoch`: the lease epoch it is recorded under; by default the one this lane last wrote (or asked) under */
  private async deadLetter(lane: Lane, d: Delivery, m: WireMessage, reason: string, status: number | null, response: string | null, kind: DeadLetterKind = 'rejected', epoch = lane.marks.epoch, retry: number | null = null): Promise<boolean> {
    const entry: DeadLetter = { deviceId: m.deviceId, seq: m.seq, epoch, agentId: this.o.agentId, reason, status, response, payload: d.raw.toString('utf8') };
    return this.host.deadLetters.record(d, entry, kind, retry);
  }
}
