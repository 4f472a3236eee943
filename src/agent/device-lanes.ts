/**
 * FIFO per device, devices in parallel: the agent's delivery engine. Each device has a lane that
 * sends one message at a time (its loop, lane-loop.ts: lease, send, retry, settle, skip exactly);
 * a transient failure holds the lane while other lanes go on; a permanent failure dead-letters
 * the message and then blocks the lane or skips on, by policy.
 *
 * The runtime's line orders (`setOrders`, from each grant taken) pause a lane, hold it at a seq,
 * release it, or order a refused seq sent again (line-orders.ts: what a lane may send under them
 * and its own refusal). A lane that a refusal blocked stays blocked until an order frees it.
 *
 * Modes: `taking` (delivering), `giving-back` (a give-back runs: requests on the wire finish and
 * their outcomes are settled, nothing new is sent and nothing is retried; then every delivery
 * still held is forgotten, unsettled, for the caller to return with its subscription; `resume()`
 * takes work again) and `stopped` (the same, for good). A pause or a block outlives a give-back:
 * the orders of the next grant say the same.
 *
 * Each lane keeps its condition as one value (flowing, retrying, paused, blocked; lane-condition.ts):
 * what `reports()` tells the heartbeat about the lines that do not flow.
 */
import { EventEmitter } from 'node:events';
import type { Delivery, LineOrder } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';
import { DeadLetters } from './dead-letters.ts';
import { FLOWING, laneReports } from './lane-condition.ts';
import { LaneLoop, newLane, type Lane, type LaneOptions } from './lane-loop.ts';
import { heldBack, refusalUnder } from './line-orders.ts';

export type { LaneOptions, PermanentPolicy } from './lane-loop.ts';

/** Events: `applied` {deviceId, seq}, `retry` {deviceId, seq, attempt, reason}, `dead-letter` (DeadLetter), `blocked` {deviceId, seq, reason}, `unblocked` {deviceId, seq}, `skipped` {deviceId, seq}, `anomaly` {deviceId, seq, watermark, reason}. */
export class DeviceLanes extends EventEmitter {
  private readonly lanes = new Map<string, Lane>();
  private mode: 'taking' | 'giving-back' | 'stopped' = 'taking';
  /** resolves (with null) when the lanes stop taking work: waits for a lease or a retry end at once */
  private interrupted!: Promise<null>;
  private interrupt!: () => void;
  private readonly running = new Set<Promise<void>>();
  private readonly deadLetters: DeadLetters;
  private readonly loop: LaneLoop;

  constructor(private readonly o: LaneOptions) {
    super();
    this.arm();
    const { agentId, clock, logger, retryInitialMs, retryMaxMs, random, deadLetter } = o;
    this.deadLetters = new DeadLetters({ agentId, clock, logger, retryInitialMs, retryMaxMs, ...(random ? { random } : {}), deadLetter, recorded: (entry) => this.emit('dead-letter', entry) });
    const deadLetters = this.deadLetters;
    this.loop = new LaneLoop(o, { taking: () => this.mode === 'taking', interrupted: () => this.interrupted, deadLetters, emit: (event, payload) => this.emit(event, payload) });
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
    this.wake(lane);
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

  /**
   * The line orders of the newest grant taken (a device without one has none): each lane holds,
   * goes on, or sends an ordered retry by them (line-orders.ts). Its own refusal of S ends only
   * when an order releases S; a retry of S it acted on is not sent again for the same (seq, n).
   */
  setOrders(lines: Readonly<Record<string, LineOrder>>): void {
    for (const deviceId of Object.keys(lines)) this.lane(deviceId);
    for (const lane of this.lanes.values()) {
      lane.order = lines[lane.deviceId] ?? null;
      const refusal = refusalUnder(lane.refusal, lane.order);
      if (refusal !== lane.refusal) {
        this.o.logger.warn({ deviceId: lane.deviceId, seq: lane.refusal!.seq }, 'the runtime released the refused message (skipped: it stays dead-lettered); the line goes on after it');
        this.emit('unblocked', { deviceId: lane.deviceId, seq: lane.refusal!.seq });
        lane.refusal = refusal;
      }
      this.loop.restate(lane, lane.condition.state === 'retrying' ? lane.condition : FLOWING);
      this.wake(lane);
    }
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

  /** The lines that do not flow, for the heartbeat: blocked first, then retrying, then paused, the oldest first (lane-condition.ts). */
  reports(): LaneReport[] {
    return laneReports([...this.lanes.values()].map((l) => ({ deviceId: l.deviceId, condition: l.condition, held: () => heldBack(l.queue) })));
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
      // its message went back to the broker: nothing is retried here any more (a block or a pause stays: the orders re-establish them)
      if (lane.condition.state === 'retrying') this.loop.restate(lane, FLOWING);
    }
    return n;
  }

  private lane(deviceId: string): Lane {
    let lane = this.lanes.get(deviceId);
    if (!lane) {
      lane = newLane(deviceId);
      this.lanes.set(deviceId, lane);
    }
    return lane;
  }

  private run(lane: Lane): void {
    lane.running = true;
    const p = this.loop.drain(lane)
      .catch((err) => this.o.logger.error({ deviceId: lane.deviceId, err: (err as Error).message }, 'device lane failed'))
      .finally(() => {
        this.running.delete(p);
        lane.running = false;
        // deliveries accepted while the last run was winding down
        this.wake(lane);
      });
    this.running.add(p);
  }

  /** Runs the lane when it is idle and has a delivery that may go now. */
  private wake(lane: Lane): void {
    if (!lane.running && this.mode === 'taking' && this.loop.next(lane) !== null) this.run(lane);
  }
}
