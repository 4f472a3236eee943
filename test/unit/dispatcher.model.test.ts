// Model-based runs of the dispatcher (fast-check): random interleavings of dispatches, resumes to
// new targets, quiesces, replays that finish or fail, settles and stops, against a model of the
// parked table and the agent queues. What the dispatcher must never do: send a message while an
// older one is still parked, lose one, or handle one twice. What it must always do: once the
// replays and settles it started finish, end up where the coordinator's last word put it (sending
// to the last resume's target, or parking after a quiesce), within a bound, even while messages
// keep arriving.
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { dispatcherMachine, type DispatchTarget } from '../../machines/dispatcher.machine.ts';

/** The world the dispatcher acts on: the parked rows, the queues, and what every message became. */
class World {
  parked: number[] = [];
  /** every message that reached a queue, in order of arrival (queues are drained into the next in order) */
  delivered: number[] = [];
  refused: number[] = [];
  next = 1;
  /** replays in flight: each moves the rows parked when it started */
  replays: Array<{ rows: number[]; finish(ok: boolean): void }> = [];
  settles: Array<() => void> = [];
  /** replays and settles started and not yet ended (chained ones wait for those before them) */
  unfinished = 0;
  violations: string[] = [];

  /** the replay chain: the replay running now, or the last one */
  chain: Promise<unknown> = Promise.resolve();

  /** a message reaches a queue; `batch`: the replayed rows it goes with (they leave the table together) */
  send(seq: number, batch: number[] = []): void {
    const older = this.parked.filter((p) => p < seq && !batch.includes(p));
    if (older.length) this.violations.push(`sent ${seq} while ${older.join(',')} still parked`);
    this.delivered.push(seq);
  }
}

const tick = () => new Promise((r) => setImmediate(r));

function system() {
  const w = new World();
  const clock = new SimulatedClock();
  const actor = createActor(
    dispatcherMachine.provide({
      actions: {
        send: (_, { event }) => w.send(event.message.seq),
        park: (_, { event }) => void w.parked.push(event.message.seq),
        refuse: (_, { event }) => void w.refused.push(event.message.seq),
      },
      actors: {
        // as the runtime's: one replay at a time; a replay left by the machine (aborted) finishes
        // the batch it read and ends; each reads the rows parked when it starts running
        replayParked: fromPromise<number, { target: DispatchTarget }>(({ signal }) => {
          w.unfinished++;
          const run = w.chain.then(
            () =>
              new Promise<number>((resolve, reject) => {
                const rows = [...w.parked];
                w.replays.push({
                  rows,
                  finish: (ok) => {
                    w.unfinished--;
                    if (!ok) return reject(new Error('database down'));
                    for (const seq of rows) w.send(seq, rows), (w.parked = w.parked.filter((p) => p !== seq));
                    resolve(rows.length);
                  },
                });
              }),
          );
          w.chain = run.catch(() => {});
          void signal;
          return run;
        }),
        settle: fromPromise<void, void>(() => (w.unfinished++, w.chain.then(() => new Promise<void>((resolve) => w.settles.push(() => (w.unfinished--, resolve())))))),
      },
    }),
    { input: { retryDelay: 500 }, clock },
  );
  actor.start();
  return { w, clock, actor };
}
type Sys = ReturnType<typeof system>;

const dispatch = (s: Sys) => s.actor.send({ type: 'dispatch.message', message: { deviceId: 'd1', seq: s.w.next++, method: 'PUT', path: '/p', body: null }, reply: { resolve: () => {}, reject: () => {} } });
/** steps (replays and settles finished, retryDelay passed) within which the dispatcher must obey the last resume or quiesce:
 * the settle, the first round, the last round (3 are needed), and one to spare */
const SETTLE_BOUND = 4;

const commands = [
  fc.constant({ name: 'dispatch', run: dispatch }),
  fc.integer({ min: 1, max: 3 }).map((epoch) => ({ name: `resume(${epoch})`, run: (s: Sys) => s.actor.send({ type: 'dispatcher.resume', target: { agentId: `a${epoch}`, queue: `q${epoch}`, epoch } }) })),
  fc.constant({ name: 'quiesce', run: (s: Sys) => s.actor.send({ type: 'dispatcher.quiesce' }) }),
  fc.boolean().map((ok) => ({ name: `replay ${ok ? 'finishes' : 'fails'}`, run: async (s: Sys) => (s.w.replays.shift()?.finish(ok), await tick()) })),
  fc.constant({ name: 'settle', run: async (s: Sys) => (s.w.settles.shift()?.(), await tick()) }),
  fc.constant({ name: 'retryDelay passes', run: (s: Sys) => s.clock.increment(500) }),
];

describe('dispatcher model (fast-check)', () => {
  it('never sends ahead of a parked message; obeys the last resume or quiesce within a bound under load; every message is delivered, parked or refused exactly once', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.oneof(...commands), { maxLength: 60 }), async (script) => {
        const s = system();
        for (const c of script) await c.run(s);
        const trace = script.map((c) => c.name).join(', ');
        // then: the steps it started finish, under a steady stream of new messages
        const last = script.map((c) => c.name).filter((n) => n === 'quiesce' || n.startsWith('resume')).at(-1) ?? 'quiesce';
        const wanted = last === 'quiesce' ? 'parking' : 'sending';
        // each step ends one replay or settle per chain: those left behind (by resumes and quiesces in
        // a row) end first, one a step, then the bound holds whatever the rate
        const bound = SETTLE_BOUND + s.w.unfinished;
        let steps = 0;
        for (; steps < bound && !s.actor.getSnapshot().matches(wanted); steps++) {
          for (let i = 0; i < 3; i++) dispatch(s);
          for (const r of s.w.replays.splice(0)) r.finish(true);
          for (const settle of s.w.settles.splice(0)) settle();
          s.clock.increment(500);
          await tick();
        }
        if (!s.actor.getSnapshot().matches(wanted)) throw new Error(`still ${JSON.stringify(s.actor.getSnapshot().value)} after ${bound} steps, not ${wanted} as the last ${last} asked, after: ${trace}`);
        if (wanted === 'sending' && `resume(${s.actor.getSnapshot().context.target!.epoch})` !== last) throw new Error(`sending to epoch ${s.actor.getSnapshot().context.target!.epoch} after the last ${last}, after: ${trace}`);
        // where it ended, new messages go out (or park) behind everything older
        for (let i = 0; i < 3; i++) dispatch(s);
        // then: stop, letting whatever is in flight finish
        s.actor.send({ type: 'dispatcher.stop' });
        for (let i = 0; i < 10 && s.actor.getSnapshot().status !== 'done'; i++) {
          for (const r of s.w.replays.splice(0)) r.finish(true);
          for (const settle of s.w.settles.splice(0)) settle();
          await tick();
        }
        if (s.w.violations.length) throw new Error(`${s.w.violations.join('; ')} after: ${trace}`);
        const all = [...s.w.delivered, ...s.w.parked, ...s.w.refused].sort((a, b) => a - b);
        const expected = Array.from({ length: s.w.next - 1 }, (_, i) => i + 1);
        if (JSON.stringify(all) !== JSON.stringify(expected)) throw new Error(`messages ${JSON.stringify(expected)} ended as ${JSON.stringify(all)} after: ${trace}`);
        const d = s.w.delivered;
        if (d.some((seq, i) => i > 0 && seq < d[i - 1]!)) throw new Error(`delivered out of order ${JSON.stringify(d)} after: ${trace}`);
      }),
      { numRuns: 500 },
    );
  });
});
