/**
 * FIFO per device, devices in parallel: the agent's delivery engine. Each device has a lane that
 * sends one message at a time; a transient failure holds the lane (retry with capped backoff)
 * while other lanes go on; a permanent failure dead-letters the message and then blocks the lane
 * or skips on, by policy. A message is acked only once its outcome is final; on a device that reports
 * its watermark, one applied is acked once its receipt is out (a crash in between hands it to the
 * next agent, which skips and reports it). A device that does not report its watermark would apply
 * such a redelivery twice, so there the ack comes at once and a crash may lose the receipt.
 *
 * Skipping is exact: a message at or below the lane's watermark is acked unsent only when it is a
 * known redelivery: a seq this lane settled itself (kept as ranges), or one at or below its
 * `baseline`, what others were known to have applied when its epoch began (the device's watermark
 * then, or the watermark of the grant that brought the epoch). Anything else below the watermark
 * (a reused seq, a message that overtook another) is an anomaly: dead-lettered with the reason and
 * raised as an `anomaly` event, never dropped silently. Residual imprecision: below the baseline a
 * reused seq cannot be told from a redelivery (a device reports only its highest seq). That
 * bookkeeping is lane-marks.ts; recording dead letters (and requeueing one that could not be
 * recorded) is dead-letters.ts.
 *
 * Modes: `taking` (delivering), `giving-back` (a give-back runs: requests on the wire finish and
 * their outcomes are settled, nothing new is sent and nothing is retried; then every delivery
 * still held is forgotten, unsettled, for the caller to return with its subscription; `resume()`
 * takes work again) and `stopped` (the same, for good).
  *
 * Each lane keeps its condition as one value (flowing, retrying, blocked; lane-condition.ts): what
 * `reports()` tells the heartbeat about the lines that do not flow.
 *
 * Longer than 300 lines: one job, the lanes' loop (take, wait for the lease, deliver, retry, settle);
 * its bookkeeping (lane-marks.ts), conditions (lane-condition.ts) and dead letters (dead-letters.ts) are apart already.
 */
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { backoff, delay } from '../clock.ts';
import type { Clock, DeadLetter, Delivery, DeviceClient, DeviceConfig, DeviceOutcome, WireMessage } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';
import { DeadLetters } from './dead-letters.ts';
import { FLOWING, blockedReason, laneReports, retrying, type LaneCondition } from './lane-condition.ts';
import { LaneMarks } from './lane-marks.ts';

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
   * reports a seq as applied (batched by the caller); when it returns a promise, the message is
   * acked once that resolves (its receipt is out), so a crash in between hands it to the next
   * agent, which reports it, instead of losing the report
   */
  applied(deviceId: string, seq: number): Promise<void> | void;
  /** records a dead letter durably (`anomaly`: not the device's refusal, see the header); the message is acked only after it resolves */
  deadLetter(entry: DeadLetter, kind: 'rejected' | 'anomaly'): Promise<void>;
  /** the device said this agent's epoch is stale */
  fenced(deviceId: string, outcome: DeviceOutcome): void;
}

interface Lane {
  deviceId: string;
  queue: Delivery[];
  running: boolean;
  /** flowing, retrying its head message, or blocked by a rejected one (lane-condition.ts) */
  condition: LaneCondition;
  /** what it knows applied on its device: watermark, baseline, its own settled seqs (lane-marks.ts) */
  marks: LaneMarks;
}

/** Events: `applied` {deviceId, seq}, `retry` {deviceId, seq, attempt, reason}, `dead-letter` (DeadLetter), `blocked` {deviceId, seq, reason}, `skipped` {deviceId, seq}, `anomaly` {deviceId, seq, watermark, reason}. */
export class DeviceLanes extends EventEmitter {
  private readonly lanes = new Map<string, Lane>();
  private mode: 'taking' | 'giving-back' | 'stopped' = 'taking';
  /** resolves (with null) when the lanes stop taking work: waits for a lease or a retry end at once */
  private interrupted!: Promise<null>;
  private interrupt!: () => void;
  private readonly running = new Set<Promise<void>>();
  private readonly deadLetters: DeadLetters;

  constructor(private readonly o: LaneOptions) {
    super();
    this.arm();
    const { agentId, clock, logger, retryInitialMs, retryMaxMs, random, deadLetter } = o;
    this.deadLetters = new DeadLetters({ agentId, clock, logger, retryInitialMs, retryMaxMs, ...(random ? { random } : {}), deadLetter, recorded: (entry) => this.emit('dead-letter', entry) });
  }

  private arm(): void {
    this.interrupted = new Promise<null>((resolve) => (this.interrupt = () => resolve(null)));
  }

  /**
   * Takes a delivery from the agent's queue. While the lanes are not taking work it is left
   * unsettled: it goes back to the broker with the subscription it came from (a nack would have
   * the broker hand it straight back to a consumer that is still attached). One that cannot be read
   * or is not the runtime's is dead-lettered at once under no device: it never reaches a lane, so
   * its seq (forged, or 2^53-1) moves no watermark and no real message is skipped for it.
   */
  accept(d: Delivery): void {
    if (this.mode !== 'taking') return;
    if (!d.message) {
      void this.deadLetters.raw(d, `malformed message: ${d.malformed ?? 'unreadable'}`);
      return;
    }
    const forged = this.o.authenticate?.(d.message) ?? null;
    if (forged !== null) {
      void this.deadLetters.raw(d, forged);
      return;
    }
    const lane = this.lane(d.message.deviceId);
    lane.queue.push(d);
    if (!lane.running && !blocked(lane)) this.run(lane);
  }

  /**
   * A lease grant's watermark for a device. The grant that brings an epoch this lane has not begun
   * yet (or one without an epoch) says what others applied before it: messages at or below it are
   * known redeliveries. A renewal of the running epoch only raises the watermark: during its own
   * epoch this lane is the one applying, so a seq below it that this lane never settled is an anomaly.
   */
  setWatermark(deviceId: string, seq: number, epoch?: number): void {
    this.lane(deviceId).marks.granted(seq, epoch);
  }

  /** Deliveries held (waiting or on the wire), over all devices. */
  holding(): number {
    let n = 0;
    for (const lane of this.lanes.values()) n += lane.queue.length;
    return n;
  }

  /** Per-device view for status and tests. */
  snapshot(): Array<{ deviceId: string; queued: number; blocked: string | null; lastApplied: number }> {
    return [...this.lanes.values()].map((l) => ({ deviceId: l.deviceId, queued: l.queue.length, blocked: l.condition.state === 'blocked' ? l.condition.reason : null, lastApplied: l.marks.lastApplied }));
  }

  /** The lines that do not flow, for the heartbeat: blocked first, then retrying, the oldest first (lane-condition.ts). */
  reports(): LaneReport[] {
    return laneReports(this.lanes.values());
  }

  /**
   * Stops taking work (the agent gives its queue back): each request on the wire finishes, once,
   * and its outcome is settled as usual (applied: acked; rejected: dead-lettered); a transient
   * answer is not retried. Then every delivery still held is forgotten, unsettled, and the count
   * returned: the caller returns them with its subscription (`Subscription.release`), so that its
   * queue never shows no consumer while one of its messages is out.
   */
  async giveBack(): Promise<number> {
    if (this.mode === 'taking') {
      this.mode = 'giving-back';
      this.interrupt();
    }
    return this.settle();
  }

  /** Takes work again after a give-back (the agent consumes its queue again). */
  resume(): void {
    if (this.mode !== 'giving-back') return;
    this.mode = 'taking';
    this.arm();
  }

  /** A give-back for good: the agent is stopping. */
  async stop(): Promise<void> {
    this.mode = 'stopped';
    this.interrupt();
    await this.settle();
  }

  private async settle(): Promise<number> {
    while (this.running.size > 0) await Promise.all([...this.running]);
    let n = 0;
    for (const lane of this.lanes.values()) {
      n += lane.queue.splice(0).length;
      // its head message went back to the broker: nothing is retried here any more (a block stays)
      if (lane.condition.state === 'retrying') lane.condition = FLOWING;
    }
    return n;
  }

  private lane(deviceId: string): Lane {
    let lane = this.lanes.get(deviceId);
    if (!lane) {
      lane = { deviceId, queue: [], running: false, condition: FLOWING, marks: new LaneMarks() };
      this.lanes.set(deviceId, lane);
    }
    return lane;
  }

  private run(lane: Lane): void {
    lane.running = true;
    const p = this.drain(lane)
      .catch((err) => this.o.logger.error({ deviceId: lane.deviceId, err: (err as Error).message }, 'device lane failed'))
      .finally(() => {
        this.running.delete(p);
        lane.running = false;
        // deliveries accepted while the last run was winding down
        if (lane.queue.length > 0 && !blocked(lane) && this.mode === 'taking') this.run(lane);
      });
    this.running.add(p);
  }

  private async drain(lane: Lane): Promise<void> {
    while (lane.queue.length > 0 && !blocked(lane) && this.mode === 'taking') {
      const d = lane.queue[0]!;
      const m = d.message!;
      const known = lane.marks.redelivery(m.seq);
      if (known !== null) {
        lane.queue.shift();
        if (known === 'settled-here') {
          d.ack(); // its receipt is out or on its way
          this.emit('skipped', { deviceId: m.deviceId, seq: m.seq });
        } else if (known === 'before-epoch') {
          // applied before this epoch (the device or the grant says so): reported applied, as the
          // agent that applied it may have died before its receipt went out
          this.ackWhenReported(lane, d, this.o.applied(m.deviceId, m.seq));
          this.emit('skipped', { deviceId: m.deviceId, seq: m.seq });
        } else await this.anomaly(lane, d, m);
        continue;
      }
      const device = this.o.devices.get(m.deviceId);
      if (!device) {
        // under a lease, like every outcome: its dead letter names the epoch the runtime checks it by
        const epoch = await Promise.race([this.o.lease.acquire(), this.interrupted]);
        if (epoch === null || this.mode !== 'taking') return;
        lane.queue.shift();
        await this.deadLetter(d, m, `device ${m.deviceId} is not in this agent's devices file`, null, null, 'rejected', epoch);
        continue;
      }
      const outcome = await this.deliver(lane, d, device, m);
      if (outcome === null) return; // giving back: left in the lane, returned with the subscription
      lane.condition = FLOWING; // a final outcome: no longer retried (a rejection may block it below)
      if (outcome === 'known') continue; // already applied: skipped on the next turn
      if (outcome === 'answer-lost') {
        // this lane's own write, whose answer it lost: applied, once
        lane.queue.shift();
        this.appliedHere(lane, d, m);
        continue;
      }
      if (outcome.kind === 'fenced') {
        // keep it at the head: it goes out again under a newer lease, or back to the broker
        this.o.fenced(m.deviceId, outcome);
        continue;
      }
      lane.queue.shift();
      if (outcome.kind === 'applied') {
        this.appliedHere(lane, d, m);
      } else if (outcome.kind === 'permanent') {
        const recorded = await this.deadLetter(d, m, outcome.reason, outcome.status, outcome.response);
        if (recorded) lane.marks.settle(m.seq);
        if (this.o.onPermanent === 'block') this.block(lane, m, outcome, recorded);
      }
    }
  }

  /** onPermanent=block: nothing after the rejected message is sent until the agent restarts (there is no unblock yet). */
  private block(lane: Lane, m: WireMessage, outcome: Extract<DeviceOutcome, { kind: 'permanent' }>, recorded: boolean): void {
    const reason = blockedReason(m.seq, outcome, recorded);
    lane.condition = { state: 'blocked', seq: m.seq, status: outcome.status, response: outcome.response, reason, since: this.o.clock.now() };
    this.o.logger.error({ deviceId: m.deviceId, seq: m.seq, status: outcome.status, reason }, 'device rejected a message: its line is blocked until the agent restarts');
    this.emit('blocked', { deviceId: m.deviceId, seq: m.seq, reason });
  }

  /**
   * Sends until the outcome is final (applied, permanent, fenced). Every attempt waits for a valid
   * lease and writes under its epoch; a new epoch first asks the device for its watermark, and the
   * lease is checked again after that answer (it may have lapsed meanwhile, e.g. across a pause).
   * Null when the lanes stopped taking work (nothing more is sent or retried), `known` when the
   * device already has it.
   *
   * A transient answer may hide a write that went through (a timeout, a connection dropped after
   * the request): on a device that reports its watermark, the retry waits until the device says
   * whether it has the seq (`answer-lost`: it does, this lane's write), so nothing is written twice.
   */
  private async deliver(lane: Lane, d: Delivery, device: DeviceConfig, m: WireMessage): Promise<DeviceOutcome | 'known' | 'answer-lost' | null> {
    let unsure = false; // an earlier attempt of this epoch may have been applied
    for (let attempt = 1; ; ) {
      const epoch = await Promise.race([this.o.lease.acquire(), this.interrupted]);
      if (epoch === null || this.mode !== 'taking') return null;
      if (unsure && epoch === lane.marks.epoch && lane.marks.reportsWatermark) {
        const wm = await this.o.client.watermark(device);
        if (wm !== null && wm >= m.seq) return 'answer-lost';
        if (wm !== null) unsure = false;
        else if ((await this.retryWait(lane, m, attempt++, 'the device did not say whether it applied the last attempt')) === null) return null;
        continue;
      }
      if (epoch !== lane.marks.epoch) {
        lane.marks.beginEpoch(epoch);
        lane.marks.deviceAnswered(await this.o.client.watermark(device));
        if (m.seq <= lane.marks.lastApplied) return 'known';
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
    lane.condition = retrying(lane.condition, m.seq, attempt, reason, this.o.clock.now());
    const wait = backoff(attempt, this.o.retryInitialMs, this.o.retryMaxMs, this.o.random);
    if (attempt === 1 || attempt % 10 === 0) {
      this.o.logger.warn({ deviceId: m.deviceId, seq: m.seq, attempt, reason, retryInMs: wait }, 'device delivery failed; retrying, its line is held');
    }
    this.emit('retry', { deviceId: m.deviceId, seq: m.seq, attempt, reason });
    if ((await Promise.race([delay(this.o.clock, wait), this.interrupted])) === null || this.mode !== 'taking') return null;
    return true;
  }

  private appliedHere(lane: Lane, d: Delivery, m: WireMessage): void {
    lane.marks.appliedHere(m.seq);
    this.ackWhenReported(lane, d, this.o.applied(m.deviceId, m.seq));
    this.emit('applied', { deviceId: m.deviceId, seq: m.seq });
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
    const ok = await this.deadLetter(d, m, reason, null, null, 'anomaly');
    if (ok) {
      lane.marks.settle(m.seq);
      this.emit('anomaly', { deviceId: m.deviceId, seq: m.seq, watermark, reason });
    }
  }

  /** `epoch`: the lease epoch it is recorded under; by default the one this lane last wrote (or asked) under */
  private async deadLetter(d: Delivery, m: WireMessage, reason: string, status: number | null, response: string | null, kind: 'rejected' | 'anomaly' = 'rejected', epoch = this.lanes.get(m.deviceId)?.marks.epoch ?? 0): Promise<boolean> {
    const entry: DeadLetter = { deviceId: m.deviceId, seq: m.seq, epoch, agentId: this.o.agentId, reason, status, response, payload: d.raw.toString('utf8') };
    return this.deadLetters.record(d, entry, kind);
  }
}

const blocked = (lane: Lane): boolean => lane.condition.state === 'blocked';
