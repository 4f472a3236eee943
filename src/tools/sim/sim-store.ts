/**
 * A runtime's handle on the shared in-memory database, in the wide simulation. The database is one
 * (every runtime sees the same rows); what goes wrong is this runtime's connection to it, for a
 * while:
 * - `fail`: every call is refused at once (connection refused, PostgreSQL restarting);
 * - `hang`: a call is not answered while the window lasts (a half-open connection, a stopped
 *   server); its statement ran at once, runs when the window ends (after its caller gave up on it),
 *   or never, and the answer comes after the window (late) or never (the product has to give up on
 *   it by itself);
 * - `ambiguous`: writes commit, then the call fails (the connection drops after COMMIT);
 * - `flap`: only leadership renewals fail (the renewal query times out at the database).
 * Answers reach the runtime through its gate: a paused process sees them after it resumes.
 */
import type { Store } from '../../ports.ts';
import type { Gate, World } from './world.ts';

export type StoreFaultMode = 'fail' | 'hang' | 'ambiguous' | 'flap';

/**
 * Which calls an `ambiguous` window fails after they commit (the writes), role by role. Every call
 * of the port is named, so one added to a role has to be placed here. `resolveParked` inserts
 * refusal rows but is left with the reads, as it always was: the recorded seeds replay as they did.
 */
const WRITES: Record<keyof Store, boolean> = {
  migrate: false, close: false, // StoreLifecycle
  acquireLeadership: true, releaseLeadership: true, // LeadershipStore
  getAssignment: false, recordFirstAgent: true, beginSwitch: true, recordCandidate: true, setPhase: true, completeSwitch: true, listSwitches: false, // AssignmentStore
  upsertAgent: true, listAgents: false, // AgentStore
  reserveSeqs: true, // SeqStore
  park: true, fetchParked: false, resolveParked: false, deleteParked: true, countParked: false, countParkedByDevice: false, // ParkingStore
  advanceWatermarks: true, recordSettled: true, settledRecords: false, deviceStreams: false, // DeliveryStore
  deadLetter: true, listDeadLetters: false, getDeadLetter: false, findDeadLetter: false, resolveDeadLetter: true, // DeadLetterStore
  lineOrders: false, setLineOrder: true, // LineStore
  recordAudit: true, listAudit: false, // AuditStore
  claimIdempotencyKey: true, retakeIdempotencyKey: true, completeIdempotencyKey: true, releaseIdempotencyKey: true, purgeIdempotencyKeys: true, // IdempotencyStore (baton serve)
};

interface Window {
  mode: StoreFaultMode;
  from: number;
  until: number;
}

export class StoreFaults {
  private windows: Window[] = [];

  constructor(private readonly world: World) {}

  add(mode: StoreFaultMode, ms: number): number {
    const until = this.world.now + ms;
    this.windows.push({ mode, from: this.world.now, until });
    return until;
  }

  active(prop: keyof Store): StoreFaultMode | null {
    const now = this.world.now;
    this.windows = this.windows.filter((w) => w.until > now);
    for (const w of this.windows) {
      if (w.mode === 'flap' && prop !== 'acquireLeadership') continue;
      if (w.mode === 'ambiguous' && WRITES[prop] !== true) continue;
      return w.mode;
    }
    return null;
  }

  /** the end of the hang window that holds calls made now */
  hangEnd(): number {
    return Math.max(this.world.now, ...this.windows.filter((w) => w.mode === 'hang').map((w) => w.until));
  }
}

const lost = (prop: string) => new Error(`Connection terminated unexpectedly during ${prop} (simulated)`);

/**
 * The store as one runtime sees it: its gate, its faults. `latencyMs`: a call that goes through is
 * answered that much later (a PostgreSQL round trip; 0: at once, as the recorded seeds ran).
 */
export function simStore(store: Store, gate: Gate, world: World, faults: StoreFaults, latencyMs: () => number = () => 0): Store {
  const rnd = world.random;
  return new Proxy(store, {
    get(target, prop: keyof Store) {
      const f = target[prop] as (...a: unknown[]) => Promise<unknown>;
      if (typeof f !== 'function') return f;
      return (...args: unknown[]) =>
        new Promise((resolve, reject) => {
          const answer = (ok: boolean, v: unknown) => gate.run(() => (ok ? resolve(v) : reject(v)));
          if (gate.dead) return reject(new Error('the runtime process is gone'));
          const mode = faults.active(prop);
          if (mode === 'fail' || mode === 'flap') return void Promise.resolve().then(() => answer(false, lost(prop)));
          if (mode === 'ambiguous') {
            return void f.apply(target, args).then(() => answer(false, lost(prop)), (e) => answer(false, e));
          }
          if (mode === 'hang') {
            const ran = rnd() < 0.5;
            const never = rnd() < 0.3;
            const at = faults.hangEnd() + Math.floor(rnd() * 2000);
            // a statement that did not run at once may still reach the database late, when the window
            // ends (a retransmit, a lock wait), after its caller gave up on it. Decided from `at`, not
            // from a new draw, so the random stream (and every recorded seed) stays as it was
            const late = !ran && at % 2 === 1;
            const run = () => f.apply(target, args).then((v) => ({ ok: true, v }), (e) => ({ ok: false, v: e }));
            const result = ran ? run() : late ? new Promise<{ ok: boolean; v: unknown }>((done) => world.at(at, () => void run().then(done))) : Promise.resolve({ ok: false, v: lost(prop) });
            if (never) return;
            world.at(at, () => void result.then((r) => answer(r.ok, r.v)));
            return;
          }
          const ms = latencyMs();
          const later = (ok: boolean, v: unknown) => (ms > 0 ? void world.at(world.now + ms, () => answer(ok, v)) : answer(ok, v));
          f.apply(target, args).then((v) => later(true, v), (e) => later(false, e));
        });
    },
  });
}
