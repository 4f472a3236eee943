import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, SimulatedClock } from 'xstate';
import { coordinatorMachine, type Assignment, type CheckVerdict, type CoordinatorEmitted } from '../../machines/coordinator.machine.ts';

const a1: Assignment = { agentId: 'a1', topic: 'q.a1', epoch: 1, lock: 0, phase: 'normal' };
const tick = () => new Promise((r) => setTimeout(r, 0));

function start(o: { recorded?: Assignment | null; elect?: () => Promise<Assignment | null>; check?: () => Promise<CheckVerdict>; load?: () => Promise<Assignment | null> }) {
  const clock = new SimulatedClock();
  const emitted: CoordinatorEmitted[] = [];
  const actor = createActor(
    coordinatorMachine.provide({
      actors: {
        loadAssignment: fromPromise(o.load ?? (async () => o.recorded ?? null)),
        electAgent: fromPromise(o.elect ?? (async () => a1)),
        checkAgent: fromPromise(o.check ?? (async (): Promise<CheckVerdict> => ({ verdict: 'healthy' }))),
      },
    }),
    { input: { checkAgentLoopTime: 30_000, retryDelay: 1000 }, clock },
  );
  for (const t of ['coordinator.active', 'coordinator.awaiting', 'coordinator.checked'] as const) actor.on(t, (e) => emitted.push(e as CoordinatorEmitted));
  actor.start();
  return { actor, clock, emitted };
}

describe('coordinator machine', () => {
  it('adopts the recorded agent', async () => {
    const { actor, emitted } = start({ recorded: a1 });
    await tick();
    expect(actor.getSnapshot().value).toEqual({ normal: 'idle' });
    expect(emitted).toEqual([{ type: 'coordinator.active', assignment: a1 }]);
  });

  it('elects the first agent when none is recorded (figure 3)', async () => {
    const { actor, emitted } = start({ recorded: null });
    await tick();
    await tick();
    expect(actor.getSnapshot().context.assignment).toEqual(a1);
    expect(emitted.map((e) => e.type)).toEqual(['coordinator.active']);
  });

  it('waits for a healthy agent when none is, then elects', async () => {
    let healthy = false;
    const { actor, emitted } = start({ recorded: null, elect: async () => (healthy ? a1 : null) });
    await tick();
    await tick();
    expect(actor.getSnapshot().value).toBe('awaiting');
    healthy = true;
    actor.send({ type: 'agent.healthy', agentId: 'a1' });
    await tick();
    await tick();
    expect(actor.getSnapshot().value).toEqual({ normal: 'idle' });
    expect(emitted.map((e) => e.type)).toEqual(['coordinator.awaiting', 'coordinator.active']);
  });

  it('retries loading after retryDelay when the store fails', async () => {
    let fail = true;
    const { actor, clock } = start({ load: async () => { if (fail) throw new Error('db down'); return a1; } });
    await tick();
    expect(actor.getSnapshot().value).toBe('loadBackoff');
    fail = false;
    clock.increment(1000);
    await tick();
    expect(actor.getSnapshot().value).toEqual({ normal: 'idle' });
  });

  it('retries electing after retryDelay when recording fails', async () => {
    let fail = true;
    const { actor, clock } = start({ recorded: null, elect: async () => { if (fail) throw new Error('db down'); return a1; } });
    await tick();
    await tick();
    expect(actor.getSnapshot().value).toBe('electBackoff');
    fail = false;
    clock.increment(1000);
    await tick();
    expect(actor.getSnapshot().value).toEqual({ normal: 'idle' });
  });

  it('runs the periodic check every checkAgentLoopTime and reports the verdict', async () => {
    let checks = 0;
    const verdict: CheckVerdict = { verdict: 'switch', why: 'no consumer' };
    const { clock, emitted } = start({ recorded: a1, check: async () => (checks++, verdict) });
    await tick();
    clock.increment(29_999);
    await tick();
    expect(checks).toBe(0);
    clock.increment(1);
    await tick();
    expect(checks).toBe(1);
    expect(emitted.at(-1)).toEqual({ type: 'coordinator.checked', assignment: a1, result: verdict });
    clock.increment(30_000);
    await tick();
    expect(checks).toBe(2);
  });

  it('stops on coordinator.stop', async () => {
    const { actor } = start({ recorded: a1 });
    await tick();
    actor.send({ type: 'coordinator.stop' });
    expect(actor.getSnapshot().status).toBe('done');
  });
});
