import { describe, expect, it } from 'vitest';
import { createActor, SimulatedClock } from 'xstate';
import { agentMachine, type AgentEmitted } from '../../machines/agent.machine.ts';

const timings = { heartbeatTimeout: 1000, hungTimeout: 2000, consumerGrace: 150 };

function start() {
  const clock = new SimulatedClock();
  const actor = createActor(agentMachine, { input: { agentId: 'a1', ...timings }, clock });
  const emitted: AgentEmitted[] = [];
  for (const t of ['agent.suspect', 'agent.dead', 'agent.alive'] as const) actor.on(t, (e) => emitted.push(e as AgentEmitted));
  actor.start();
  return { actor, clock, emitted };
}

describe('agent machine', () => {
  it('starts live and idle, and becomes active when activated', () => {
    const { actor } = start();
    expect(actor.getSnapshot().value).toEqual({ live: 'idle' });
    actor.send({ type: 'agent.activate' });
    expect(actor.getSnapshot().value).toEqual({ live: 'active' });
  });

  it('heartbeats keep it live: the timeout restarts on each one', () => {
    const { actor, clock } = start();
    actor.send({ type: 'agent.activate' });
    for (let i = 0; i < 5; i++) {
      clock.increment(900);
      actor.send({ type: 'agent.heartbeat' });
    }
    expect(actor.getSnapshot().value).toEqual({ live: 'active' });
  });

  it('silent past heartbeatTimeout → suspect.silent; a heartbeat brings it back to the same live state', () => {
    const { actor, clock, emitted } = start();
    actor.send({ type: 'agent.activate' });
    clock.increment(1000);
    expect(actor.getSnapshot().value).toEqual({ suspect: 'silent' });
    expect(emitted).toContainEqual({ type: 'agent.suspect', agentId: 'a1', why: 'silent' });
    actor.send({ type: 'agent.heartbeat' });
    expect(actor.getSnapshot().value).toEqual({ live: 'active' });
    expect(emitted.at(-1)).toEqual({ type: 'agent.alive', agentId: 'a1' });
  });

  it('silent and no consumer → dead (killed)', () => {
    const { actor, clock, emitted } = start();
    clock.increment(1000);
    actor.send({ type: 'agent.probe', consumers: 0 });
    expect(actor.getSnapshot().value).toBe('dead');
    expect(emitted.at(-1)).toEqual({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
  });

  it('a vanished consumer makes it suspect at once and dead after consumerGrace', () => {
    const { actor, clock, emitted } = start();
    actor.send({ type: 'agent.activate' });
    actor.send({ type: 'agent.probe', consumers: 0 });
    expect(actor.getSnapshot().value).toEqual({ suspect: 'unconsumed' });
    clock.increment(149);
    expect(actor.getSnapshot().value).toEqual({ suspect: 'unconsumed' });
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('dead');
    expect(emitted.at(-1)).toEqual({ type: 'agent.dead', agentId: 'a1', reason: 'no-consumer' });
  });

  it('a consumer that comes back within the grace keeps it alive', () => {
    const { actor, clock } = start();
    actor.send({ type: 'agent.activate' });
    actor.send({ type: 'agent.probe', consumers: 0 });
    clock.increment(100);
    actor.send({ type: 'agent.probe', consumers: 1 });
    expect(actor.getSnapshot().value).toEqual({ live: 'active' });
  });

  it('hung: silent but still consuming → dead after hungTimeout', () => {
    const { actor, clock, emitted } = start();
    actor.send({ type: 'agent.activate' });
    clock.increment(1000);
    actor.send({ type: 'agent.probe', consumers: 1 });
    clock.increment(1999);
    expect(actor.getSnapshot().value).toEqual({ suspect: 'silent' });
    clock.increment(1);
    expect(actor.getSnapshot().value).toBe('dead');
    expect(emitted.at(-1)).toEqual({ type: 'agent.dead', agentId: 'a1', reason: 'hung' });
  });

  it('a dead agent that heartbeats again comes back idle, not active', () => {
    const { actor, clock } = start();
    actor.send({ type: 'agent.activate' });
    clock.increment(1000);
    clock.increment(2000);
    expect(actor.getSnapshot().value).toBe('dead');
    actor.send({ type: 'agent.heartbeat' });
    expect(actor.getSnapshot().value).toEqual({ live: 'idle' });
    expect(actor.getSnapshot().context.deathReason).toBeNull();
  });

  it('probes with a consumer do not disturb a live agent', () => {
    const { actor, clock } = start();
    actor.send({ type: 'agent.probe', consumers: 1 });
    clock.increment(500);
    expect(actor.getSnapshot().value).toEqual({ live: 'idle' });
  });
});
