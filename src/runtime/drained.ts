/**
 * `drained()`: waits until every seq accepted so far (for one device, or all) is applied or
 * dead-lettered. At the call it takes, per device, the highest seq outstanding in the ledger (what
 * was accepted before is in the ledger: a seq is outstanding from the moment it goes out, before
 * `dispatch()` resolves); each time the accounting hears of a device (a receipt, a dead letter, a
 * withdrawn seq) the waiters of that device look again. No polling: a waiter moves only on an event.
 * Seqs accepted after the call do not count, so a steady stream cannot keep a waiter from resolving.
 *
 * Only the leader reads receipts: a standby refuses (`not-leader`), and waiters of a runtime that
 * stops leading are rejected then, since nothing would settle them any more.
 */
import type { DeviceState } from '../api.ts';
import { BatonError } from '../errors.ts';
import type { Clock } from '../ports.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { Leadership } from './leadership.ts';
import { actionNotLeader } from './refusals.ts';

export interface DrainDeps {
  ledger: Pick<AppliedLedger, 'highestOutstanding' | 'outstandingThrough'>;
  clock: Clock;
  deviceSet: Set<string>;
  runtimeId: string;
  /** built after this part: only asked once the runtime runs */
  leadership(): Pick<Leadership, 'leading' | 'leader'>;
  /** how a device's line stands, named in the timeout's text (blocked and paused lines explain a wait) */
  lineState?(deviceId: string): DeviceState;
}

interface Waiter {
  /** per device still waited for: the highest seq accepted at the call */
  targets: Map<string, number>;
  resolve(): void;
  reject(e: Error): void;
}

const DEFAULT_TIMEOUT_MS = 30_000;

export class Drains {
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly d: DrainDeps) {}

  /** `Runtime.drained()` */
  readonly drained = ({ deviceId, timeoutMs = DEFAULT_TIMEOUT_MS }: { deviceId?: string; timeoutMs?: number } = {}): Promise<void> => {
    const { d } = this;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
      return Promise.reject(new BatonError('invalid-request', `drained(): timeoutMs must be a positive number of milliseconds (got ${JSON.stringify(timeoutMs)}); nothing is waited for`, { field: 'timeoutMs' }));
    }
    if (deviceId !== undefined && !d.deviceSet.has(deviceId)) {
      return Promise.reject(new BatonError('unknown-device', `drained(): device ${JSON.stringify(deviceId)} is not configured (configured: ${[...d.deviceSet].join(', ')}); nothing is waited for`, { deviceId }));
    }
    if (!d.leadership().leading) return Promise.reject(this.notLeading('drained() was not waited for (only the leading runtime reads the receipts that settle seqs)'));
    const targets = new Map<string, number>();
    for (const id of deviceId === undefined ? d.deviceSet : [deviceId]) {
      const top = d.ledger.highestOutstanding(id);
      if (top !== null) targets.set(id, top);
    }
    if (targets.size === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = d.clock.setTimeout(() => {
        this.waiters.delete(w);
        // settled by a path that told no one (none is known): what is true wins over the timer
        const late = this.timedOut(w, timeoutMs);
        if (late) reject(late);
        else resolve();
      }, timeoutMs);
      const w: Waiter = { targets, resolve: () => (timer.cancel(), resolve()), reject: (e) => (timer.cancel(), reject(e)) };
      this.waiters.add(w);
    });
  };

  /** The ledger learnt something about `deviceId`: the waiters on it look again. */
  readonly accounted = (deviceId: string) => {
    for (const w of this.waiters) {
      const target = w.targets.get(deviceId);
      if (target === undefined || this.d.ledger.outstandingThrough(deviceId, target) !== null) continue;
      w.targets.delete(deviceId);
      if (w.targets.size === 0) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  };

  /** This runtime stopped leading: no receipt will settle anything here any more. */
  readonly leaderLost = () => {
    for (const w of this.waiters) w.reject(this.notLeading('drained() stopped waiting: this runtime no longer leads, so it no longer reads receipts; wait on the leading runtime'));
    this.waiters.clear();
  };

  /** The runtime stopped: it reads no receipt any more. */
  readonly stopped = () => {
    const e = new BatonError('runtime-stopped', 'drained() stopped waiting: the runtime stopped, so it no longer reads receipts; what is outstanding stays queued: wait on the runtime that leads now');
    for (const w of this.waiters) w.reject(e);
    this.waiters.clear();
  };

  private notLeading(what: string): BatonError {
    return actionNotLeader(this.d.runtimeId, this.d.leadership().leader(), what);
  }

  /** The timeout names what is still outstanding, per device, and how its line stands. */
  private timedOut(w: Waiter, timeoutMs: number): BatonError | null {
    const outstanding: Record<string, { count: number; lowest: number; through: number; line: DeviceState | null }> = {};
    const parts: string[] = [];
    for (const [id, through] of w.targets) {
      const left = this.d.ledger.outstandingThrough(id, through);
      if (!left) continue;
      const line = this.d.lineState?.(id) ?? null;
      outstanding[id] = { ...left, through, line };
      const seqs = left.count === 1 ? `seq ${left.lowest}` : `${left.count} seqs (${left.lowest}..${through})`;
      parts.push(`${id}: ${seqs}${line === 'blocked' || line === 'paused' || line === 'retrying' ? `, line ${line}` : ''}`);
    }
    if (parts.length === 0) return null;
    return new BatonError(
      'timeout',
      `drained(): not everything accepted was applied or dead-lettered within ${timeoutMs} ms; still outstanding: ${parts.join('; ')}. ` +
        'They stay queued and will be delivered (see baton devices: a blocked line waits for baton unblock, a paused one for baton resume)',
      { outstanding },
    );
  }
}
