/**
 * A planned handover's catch-up (the coordinator's `switching.catchingUp`): before the old agent is
 * asked for its lease back, it keeps that lease and writes what it was already sent, while new
 * messages park. This part says when it is done: every seq sent straight to an agent's queue is
 * settled in the ledger (applied or dead-lettered) on every device whose line flows. A line that is
 * blocked, paused or retrying is not waited for (its messages are given back and moved, as before);
 * the coordinator bounds the wait (`catchUpTimeout`) for the lines that flow but slowly.
 *
 * Why: what the old agent still holds when it is asked must be given back to its queue and moved to
 * the new agent's before the new agent may write anything, so the stream at the devices pauses for
 * the whole move. Written by the old agent first, it pauses only for the release and the replay.
 * Nothing here decides who writes: the lease does, as ever (the new agent gets none before the old
 * one gave its own back or it expired).
 *
 * Event-driven, no polling: the accounting tells of each device it learnt about (`accounted`).
 */
import type { DeviceState } from '../api.ts';
import type { AppliedLedger } from './applied-ledger.ts';

export interface CatchUpDeps {
  ledger: Pick<AppliedLedger, 'outstandingThrough'>;
  /** how a device's line stands: only a line that flows (or is idle) is waited for */
  lineState(deviceId: string): DeviceState;
}

const HELD: ReadonlySet<DeviceState> = new Set(['blocked', 'paused', 'retrying']);

export class CatchUp {
  /** per device, the highest seq sent straight to an agent's queue (not parked) */
  private readonly sentHigh = new Map<string, number>();
  private waiter: { targets: Map<string, number>; done(): void } | null = null;

  constructor(private readonly d: CatchUpDeps) {}

  /** The dispatcher sent `seq` of `deviceId` to an agent's queue. */
  readonly sent = (deviceId: string, seq: number): void => {
    if (seq > (this.sentHigh.get(deviceId) ?? 0)) this.sentHigh.set(deviceId, seq);
  };

  /** The ledger learnt something about `deviceId`: the wait looks again at it. */
  readonly accounted = (deviceId: string): void => {
    const w = this.waiter;
    if (!w || !w.targets.has(deviceId) || !this.settled(deviceId, w.targets.get(deviceId)!)) return;
    w.targets.delete(deviceId);
    if (w.targets.size === 0) w.done();
  };

  /** Resolves once every seq sent so far is settled on the lines that flow; ends (resolved) when `signal` aborts. */
  readonly caughtUp = (signal?: AbortSignal): Promise<void> => {
    const targets = new Map<string, number>();
    for (const [id, seq] of this.sentHigh) if (!this.settled(id, seq)) targets.set(id, seq);
    if (targets.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        if (this.waiter === w) this.waiter = null;
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const w = { targets, done };
      this.waiter = w;
      signal?.addEventListener('abort', done);
    });
  };

  /** nothing sent through `seq` is outstanding, or the line does not flow (nothing more is written on it now) */
  private settled(deviceId: string, seq: number): boolean {
    return HELD.has(this.d.lineState(deviceId)) || this.d.ledger.outstandingThrough(deviceId, seq) === null;
  }
}
