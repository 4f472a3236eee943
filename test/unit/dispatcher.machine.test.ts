import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { dispatcherMachine, type DispatcherEvent, type DispatchTarget, type OutgoingMessage } from '../../machines/dispatcher.machine.ts';

const target: DispatchTarget = { agentId: 'a1', queue: 'q.a1', epoch: 1 };
const msg = (seq: number): OutgoingMessage => ({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: null });
const dispatchEvent = (seq: number): DispatcherEvent => ({ type: 'dispatch.message', message: msg(seq), reply: { resolve: () => {}, reject: () => {} } });

function deferred() {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

function start() {
  const log: string[] = [];
  const replays: Array<ReturnType<typeof deferred>> = [];
  const settles: Array<ReturnType<typeof deferred>> = [];
  const clock = new SimulatedClock();
  const actor = createActor(
    dispatcherMachine.provide({
      actions: {
        send: (_, { target: t, event }) => log.push(`send ${event.message.seq} → ${t.queue}`),
        park: (_, { event }) => log.push(`park ${event.message.seq}`),
        refuse: (_, { event }) => log.push(`refuse ${event.message.seq}`),
      },
      actors: {
        replayParked: fromPromise(async ({ input }) => {
          log.push(`replay → ${input.target.queue}`);
          const d = deferred();
          replays.push(d);
          await d.promise;
          return 0;
        }),
        settle: fromPromise(async () => {
          log.push('settle');
          const d = deferred();
          settles.push(d);
          await d.promise;
        }),
      },
    }),
    { input: { retryDelay: 500 }, clock },
  );
  actor.start();
  return { actor, log, replays, settles, clock };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('dispatcher machine', () => {
  it('parks until the coordinator names a target, replays, then sends directly', async () => {
    const { actor, log, replays } = start();
    actor.send(dispatchEvent(1));
    expect(actor.getSnapshot().value).toBe('parking');
    actor.send({ type: 'dispatcher.resume', target });
    expect(actor.getSnapshot().value).toEqual({ replaying: 'catchingUp' });
    replays[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toBe('sending');
    actor.send(dispatchEvent(2));
    expect(log).toEqual(['park 1', 'replay → q.a1', 'send 2 → q.a1']);
  });

  it('replays again when messages were parked while it replayed, so none is sent ahead of them', async () => {
    const { actor, log, replays } = start();
    actor.send({ type: 'dispatcher.resume', target });
    actor.send(dispatchEvent(1));
    replays[0]!.resolve();
    await tick();
    // the second round is the last: what arrives now is held, not parked (see the load tests below)
    expect(actor.getSnapshot().value).toEqual({ replaying: 'closing' });
    replays[1]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toBe('sending');
    expect(log).toEqual(['replay → q.a1', 'park 1', 'replay → q.a1']);
  });

  it('a failed replay is retried after retryDelay', async () => {
    const { actor, replays, clock } = start();
    actor.send({ type: 'dispatcher.resume', target });
    replays[0]!.reject(new Error('db down'));
    await tick();
    expect(actor.getSnapshot().value).toBe('replayBackoff');
    clock.increment(500);
    expect(actor.getSnapshot().value).toEqual({ replaying: 'catchingUp' });
  });

  it('quiesce settles what is in flight and parks from then on', async () => {
    const { actor, log, replays, settles } = start();
    actor.send({ type: 'dispatcher.resume', target });
    replays[0]!.resolve();
    await tick();
    actor.send(dispatchEvent(1));
    actor.send({ type: 'dispatcher.quiesce' });
    actor.send(dispatchEvent(2));
    expect(actor.getSnapshot().value).toEqual({ quiescing: 'thenParking' });
    settles[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toBe('parking');
    actor.send(dispatchEvent(3));
    expect(log).toEqual(['replay → q.a1', 'send 1 → q.a1', 'settle', 'park 2', 'park 3']);
  });

  it('stop refuses new messages and ends once settled', async () => {
    const { actor, log, settles } = start();
    actor.send({ type: 'dispatcher.stop' });
    actor.send(dispatchEvent(1));
    settles[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().status).toBe('done');
    expect(log).toEqual(['settle', 'refuse 1']);
  });
});

describe('dispatcher machine: every event in every state where it can arrive', () => {
  it('a resume that arrives while quiescing is kept: once settled it replays to that target, then sends', async () => {
    const { actor, log, replays, settles } = start();
    actor.send({ type: 'dispatcher.resume', target });
    replays[0]!.resolve();
    await tick();
    // a leadership flap: the quiesce, then (leading again) the coordinator's active, before the settle ends
    actor.send({ type: 'dispatcher.quiesce' });
    const t2: DispatchTarget = { agentId: 'a1', queue: 'q.a1', epoch: 2 };
    actor.send({ type: 'dispatcher.resume', target: t2 });
    actor.send(dispatchEvent(1));
    settles[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toEqual({ replaying: 'catchingUp' });
    expect(actor.getSnapshot().context.target).toEqual(t2);
    replays[1]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toBe('sending');
    actor.send(dispatchEvent(2));
    expect(log).toEqual(['replay → q.a1', 'settle', 'park 1', 'replay → q.a1', 'send 2 → q.a1']);
  });

  it('a quiesce after that resume wins: once settled it parks and says so', async () => {
    const { actor, settles } = start();
    const quiesced: string[] = [];
    actor.on('dispatcher.quiesced', (e) => quiesced.push(e.type));
    actor.send({ type: 'dispatcher.resume', target });
    actor.send({ type: 'dispatcher.quiesce' });
    actor.send({ type: 'dispatcher.resume', target });
    actor.send({ type: 'dispatcher.quiesce' });
    expect(actor.getSnapshot().value).toEqual({ quiescing: 'thenParking' });
    settles[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().value).toBe('parking');
    expect(quiesced).toEqual(['dispatcher.quiesced']);
  });

  it('a settle that fails still ends the quiesce, towards the remembered target', async () => {
    const { actor, settles } = start();
    actor.send({ type: 'dispatcher.resume', target });
    actor.send({ type: 'dispatcher.quiesce' });
    actor.send({ type: 'dispatcher.resume', target });
    settles[0]!.reject(new Error('broker closed'));
    await tick();
    expect(actor.getSnapshot().value).toEqual({ replaying: 'catchingUp' });
  });

  it('stopping ignores resume and quiesce and still ends', async () => {
    const { actor, settles } = start();
    actor.send({ type: 'dispatcher.stop' });
    actor.send({ type: 'dispatcher.resume', target });
    actor.send({ type: 'dispatcher.quiesce' });
    expect(actor.getSnapshot().value).toBe('stopping');
    settles[0]!.resolve();
    await tick();
    expect(actor.getSnapshot().status).toBe('done');
  });
});

/**
 * A dispatcher over a fake parked table and one queue: replayParked sends the rows parked when it
 * starts (oldest first) once the test lets it finish; park and send settle the reply at once.
 */
function withTable() {
  const parked: number[] = [];
  const queue: number[] = [];
  const durable = new Set<number>();
  const violations: string[] = [];
  const replays: Array<{ finish(ok: boolean): void }> = [];
  const settles: Array<() => void> = [];
  let next = 1;
  const clock = new SimulatedClock();
  const actor = createActor(
    dispatcherMachine.provide({
      actions: {
        send: (_, { event }) => {
          const seq = event.message.seq;
          const older = parked.filter((p) => p < seq);
          if (older.length) violations.push(`sent ${seq} while ${older.join(',')} still parked`);
          queue.push(seq);
          event.reply.resolve({ deviceId: 'd1', seq });
        },
        park: (_, { event }) => {
          parked.push(event.message.seq);
          event.reply.resolve({ deviceId: 'd1', seq: event.message.seq });
        },
        refuse: (_, { event }) => event.reply.reject(new Error('stopping')),
      },
      actors: {
        replayParked: fromPromise(async () => {
          const rows = parked.length;
          const ok = await new Promise<boolean>((resolve) => replays.push({ finish: resolve }));
          if (!ok) throw new Error('database down');
          const batch = parked.splice(0, rows);
          queue.push(...batch);
          return batch.length;
        }),
        settle: fromPromise(() => new Promise<void>((resolve) => settles.push(resolve))),
      },
    }),
    { input: { retryDelay: 500 }, clock },
  );
  actor.start();
  const dispatch = (n: number) => {
    for (let i = 0; i < n; i++) {
      const seq = next++;
      actor.send({ type: 'dispatch.message', message: msg(seq), reply: { resolve: () => durable.add(seq), reject: () => {} } });
    }
  };
  const finishReplay = async (ok = true) => {
    replays.shift()!.finish(ok);
    await tick();
  };
  const all = () => Array.from({ length: next - 1 }, (_, i) => i + 1);
  return { actor, parked, queue, durable, violations, replays, settles, clock, dispatch, finishReplay, all };
}

describe('dispatcher machine: a replay that ends under any load', () => {
  it.each([0, 1, 7, 100, 1000])('with %i new messages per replay round, it sends directly after at most two rounds, all in order', async (rate) => {
    const t = withTable();
    t.dispatch(20); // parked before any agent is known
    t.actor.send({ type: 'dispatcher.resume', target });
    let rounds = 0;
    while (!t.actor.getSnapshot().matches('sending') && rounds < 10) {
      t.dispatch(rate); // the host keeps sending while this round runs
      await t.finishReplay();
      rounds++;
    }
    expect(rounds).toBe(rate === 0 ? 1 : 2);
    expect(t.actor.getSnapshot().value).toBe('sending');
    t.dispatch(3);
    expect(t.violations).toEqual([]);
    expect(t.parked).toEqual([]);
    expect(t.queue).toEqual(t.all());
    expect([...t.durable].sort((a, b) => a - b)).toEqual(t.all());
  });

  it('holds the messages of the last round in order and settles none before it is sent', async () => {
    const t = withTable();
    t.dispatch(2);
    t.actor.send({ type: 'dispatcher.resume', target });
    t.dispatch(2); // 3, 4: parked behind 1, 2
    await t.finishReplay();
    expect(t.actor.getSnapshot().value).toEqual({ replaying: 'closing' });
    t.dispatch(2); // 5, 6: held in the mailbox while 3, 4 go out
    expect(t.parked).toEqual([3, 4]);
    expect(t.durable.has(5) || t.durable.has(6)).toBe(false);
    await t.finishReplay();
    expect(t.queue).toEqual([1, 2, 3, 4, 5, 6]);
    expect(t.durable.has(6)).toBe(true);
    expect(t.actor.getSnapshot().value).toBe('sending');
  });

  it.each([
    ['a quiesce', (t: ReturnType<typeof withTable>) => t.actor.send({ type: 'dispatcher.quiesce' }), { quiescing: 'thenParking' }],
    ['a resume to a new target', (t: ReturnType<typeof withTable>) => t.actor.send({ type: 'dispatcher.resume', target: { agentId: 'a2', queue: 'q.a2', epoch: 2 } }), { replaying: 'catchingUp' }],
    ['a stop', (t: ReturnType<typeof withTable>) => t.actor.send({ type: 'dispatcher.stop' }), 'stopping'],
  ] as const)('%s during the last round parks the held messages, in order, behind the parked rows', async (_, event, expected) => {
    const t = withTable();
    t.actor.send({ type: 'dispatcher.resume', target });
    t.dispatch(2); // 1, 2 parked
    await t.finishReplay();
    t.dispatch(2); // 3, 4 held
    event(t);
    expect(t.actor.getSnapshot().value).toEqual(expected);
    expect(t.parked).toEqual([1, 2, 3, 4]);
    expect([...t.durable].sort()).toEqual([1, 2, 3, 4]);
    expect(t.queue).toEqual([]);
  });

  it('a failed last round parks the held messages in order and retries after retryDelay', async () => {
    const t = withTable();
    t.actor.send({ type: 'dispatcher.resume', target });
    t.dispatch(1);
    await t.finishReplay();
    t.dispatch(1);
    await t.finishReplay(false);
    expect(t.actor.getSnapshot().value).toBe('replayBackoff');
    expect(t.parked).toEqual([1, 2]);
    t.clock.increment(500);
    await t.finishReplay();
    expect(t.actor.getSnapshot().value).toBe('sending');
    expect(t.queue).toEqual([1, 2]);
  });
});
