import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { dispatcherMachine, type DispatcherEvent, type DispatchTarget, type OutgoingMessage } from '../../machines/dispatcher.machine.ts';

const target: DispatchTarget = { agentId: 'a1', queue: 'q.a1', epoch: 1 };
const msg = (seq: number): OutgoingMessage => ({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: null, epoch: 1 });
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
    expect(actor.getSnapshot().value).toBe('replaying');
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
    expect(actor.getSnapshot().value).toBe('replaying');
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
    expect(actor.getSnapshot().value).toBe('replaying');
  });

  it('quiesce settles what is in flight and parks from then on', async () => {
    const { actor, log, replays, settles } = start();
    actor.send({ type: 'dispatcher.resume', target });
    replays[0]!.resolve();
    await tick();
    actor.send(dispatchEvent(1));
    actor.send({ type: 'dispatcher.quiesce' });
    actor.send(dispatchEvent(2));
    expect(actor.getSnapshot().value).toBe('quiescing');
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
