import { afterAll, describe, expect, it } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, waitFor } from 'xstate';
import { coordinatorMachine, type Assignment, type BeginResult, type CheckVerdict, type CoordinatorEmitted } from '../../machines/coordinator.machine.ts';
import { TransitionCoverage } from '../support/transition-coverage.ts';
import { a1, chosen, done, draining, replaying, sw } from '../support/assignments.ts';

const coverage = new TransitionCoverage();

type Step<I, O> = (input: I) => Promise<O>;
interface Steps {
  loadAssignment: Step<void, Assignment | null>;
  electAgent: Step<void, Assignment | null>;
  checkAgent: Step<{ assignment: Assignment }, CheckVerdict>;
  beginSwitch: Step<{ assignment: Assignment; reason: string }, BeginResult>;
  awaitCaughtUp: Step<{ assignment: Assignment }, void>;
  fenceAgent: Step<{ assignment: Assignment }, void>;
  chooseCandidate: Step<{ assignment: Assignment; prefer: string | null }, Assignment | null>;
  moveQueue: Step<{ assignment: Assignment }, Assignment>;
  enterReplaying: Step<{ assignment: Assignment }, Assignment>;
  completeSwitch: Step<{ assignment: Assignment; replayed: number }, Assignment>;
}

/** agents the registry holds dead (the runtime provides `agentDead` from its agent registry); `ask`: the release request of a planned handover fails to start */
function start(overrides: Partial<Steps> = {}, leader = true, dead: Set<string> = new Set(), ask: { fail?: boolean } = {}) {
  const calls: string[] = [];
  const steps: Steps = {
    loadAssignment: async () => a1,
    electAgent: async () => a1,
    checkAgent: async () => ({ verdict: 'healthy' }),
    beginSwitch: async () => ({ kind: 'started', assignment: sw }),
    awaitCaughtUp: async () => {},
    fenceAgent: async () => {},
    chooseCandidate: async () => chosen,
    moveQueue: async () => draining,
    enterReplaying: async () => replaying,
    completeSwitch: async () => done,
    ...overrides,
  };
  const actors: Record<string, unknown> = Object.fromEntries(
    Object.entries(steps).map(([name, fn]) => [name, fromPromise(async ({ input }) => (calls.push(name), (steps as never as Record<string, (i: unknown) => unknown>)[name]!(input)))]),
  );
  // the release request runs (repeating) while the coordinator waits for the answer: counted, started and stopped
  const asks = { running: 0, inputs: [] as Array<{ assignment: Assignment }> };
  actors.askRelease = fromCallback(({ input }: { input: { assignment: Assignment } }) => {
    calls.push('askRelease');
    if (ask.fail) throw new Error('agent a1 was never heard');
    asks.inputs.push(input);
    asks.running++;
    return () => void asks.running--;
  });
  const clock = new SimulatedClock();
  const emitted: CoordinatorEmitted[] = [];
  const actor = createActor(coordinatorMachine.provide({ actors: actors as never, guards: { agentDead: (_, { agentId }: { agentId: string }) => dead.has(agentId) } }), {
    input: { checkAgentLoopTime: 30_000, retryDelay: 1000 },
    clock,
    inspect: coverage.inspect,
  });
  for (const t of ['coordinator.active', 'coordinator.quiesce', 'coordinator.awaiting', 'coordinator.checked', 'switch.started', 'switch.phase', 'switch.completed', 'handover.released', 'handover.fallback'] as const) {
    actor.on(t, (e) => emitted.push(e as CoordinatorEmitted));
  }
  actor.start();
  if (leader) actor.send({ type: 'leader.won' });
  return { actor, clock, emitted, calls, steps, asks };
}

const value = (a: { getSnapshot(): { value: unknown } }) => a.getSnapshot().value;

type Coordinator = ReturnType<typeof start>['actor'];
type StateValue = Parameters<ReturnType<Coordinator['getSnapshot']>['matches']>[0];

/** Resolves once the coordinator is in `state` (its steps are promises: it gets there on a later tick). */
async function reach(actor: Coordinator, state: StateValue): Promise<void> {
  await waitFor(actor, (s) => s.matches(state), { timeout: 5000 }).catch(() => {
    throw new Error(`the coordinator never reached ${JSON.stringify(state)}: it is in ${JSON.stringify(value(actor))}`);
  });
}

/** Resolves once no step is running: the coordinator waits for an event or for its clock. */
async function settled(actor: Coordinator): Promise<void> {
  await waitFor(actor, (s) => Object.keys(s.children).length === 0, { timeout: 5000 });
}
const types = (e: CoordinatorEmitted[]) => e.map((x) => ('phase' in x ? `${x.type}:${x.phase}` : x.type));

/** Drives a switch from normal up to (and including) the quiesce handshake. */
async function toQuiesced(o: Partial<Steps> = {}, dead?: Set<string>) {
  const t = start(o, true, dead);
  await reach(t.actor, { normal: 'idle' });
  t.actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
  await reach(t.actor, { switching: 'quiescing' });
  t.actor.send({ type: 'dispatcher.quiesced' });
  await settled(t.actor);
  return t;
}

describe('coordinator machine: start', () => {
  it('does nothing until it leads', async () => {
    const { actor, calls } = start({}, false);
    await settled(actor);
    expect(value(actor)).toBe('following');
    expect(calls).toEqual([]);
  });

  it('adopts the recorded agent and tells the dispatcher', async () => {
    const { actor, emitted } = start();
    await reach(actor, { normal: 'idle' });
    expect(value(actor)).toEqual({ normal: 'idle' });
    expect(emitted).toEqual([{ type: 'coordinator.active', assignment: a1 }]);
  });

  it('elects the first agent when none is recorded (figure 3)', async () => {
    const { actor, emitted } = start({ loadAssignment: async () => null });
    await reach(actor, { normal: 'idle' });
    expect(actor.getSnapshot().context.assignment).toEqual(a1);
    expect(types(emitted)).toEqual(['coordinator.active']);
  });

  it('waits for a healthy agent when none is, then elects', async () => {
    let healthy = false;
    const { actor, emitted } = start({ loadAssignment: async () => null, electAgent: async () => (healthy ? a1 : null) });
    await reach(actor, 'awaiting');
    healthy = true;
    actor.send({ type: 'agent.healthy', agentId: 'a1' });
    await reach(actor, { normal: 'idle' });
    expect(value(actor)).toEqual({ normal: 'idle' });
    expect(types(emitted)).toEqual(['coordinator.awaiting', 'coordinator.active']);
  });

  it('retries loading and electing after retryDelay when the store fails', async () => {
    let fail = 2;
    const { actor, clock } = start({
      loadAssignment: async () => { if (fail-- > 1) throw new Error('db down'); return null; },
      electAgent: async () => { if (fail-- > -1) throw new Error('db down'); return a1; },
    });
    await reach(actor, 'loadBackoff');
    clock.increment(1000);
    await reach(actor, 'electBackoff');
    clock.increment(1000);
    await reach(actor, { normal: 'idle' });
  });

  it.each([
    ['switching, no candidate yet', sw, { switching: 'quiescing' }],
    ['switching, candidate recorded', chosen, { switching: 'resumeChosen' }],
    ['draining', draining, 'draining'],
    ['replaying', replaying, { replaying: 'sending' }],
  ])('a restarted runtime resumes a switch left in %s', async (_, recorded, expected) => {
    const { actor } = start({ loadAssignment: async () => recorded as Assignment, moveQueue: () => new Promise(() => {}) });
    await reach(actor, expected as StateValue);
    expect(value(actor)).toEqual(expected);
  });

  it('resumeChosen waits for the dispatcher to settle, then drains', async () => {
    const { actor, calls } = start({ loadAssignment: async () => chosen });
    await reach(actor, { switching: 'resumeChosen' });
    expect(calls).not.toContain('moveQueue');
    actor.send({ type: 'dispatcher.quiesced' });
    await reach(actor, { replaying: 'sending' });
    expect(calls).toContain('moveQueue');
  });
});

describe('coordinator machine: normal', () => {
  it('runs the periodic check every checkAgentLoopTime; a healthy verdict changes nothing', async () => {
    let checks = 0;
    const { actor, clock, emitted } = start({ checkAgent: async () => (checks++, { verdict: 'working', why: 'has-consumer' }) });
    await reach(actor, { normal: 'idle' });
    clock.increment(29_999);
    expect(value(actor)).toEqual({ normal: 'idle' });
    expect(checks).toBe(0);
    clock.increment(1);
    expect(value(actor)).toEqual({ normal: 'checking' });
    await reach(actor, { normal: 'idle' });
    expect(checks).toBe(1);
    expect(emitted.at(-1)).toMatchObject({ type: 'coordinator.checked', result: { verdict: 'working' } });
    expect(value(actor)).toEqual({ normal: 'idle' });
  });

  it('a failing check is tried again at the next period', async () => {
    const { actor, clock, calls } = start({ checkAgent: async () => { throw new Error('broker down'); } });
    await reach(actor, { normal: 'idle' });
    clock.increment(30_000);
    expect(value(actor)).toEqual({ normal: 'checking' });
    await reach(actor, { normal: 'idle' });
    expect(calls).toContain('checkAgent');
  });

  it('a check verdict "switch" starts a switch (the patent\'s backstop)', async () => {
    const { actor, clock, calls } = start({ checkAgent: async () => ({ verdict: 'switch', why: 'no consumer' }) });
    await reach(actor, { normal: 'idle' });
    clock.increment(30_000);
    await reach(actor, { switching: 'quiescing' });
    expect(calls).toContain('beginSwitch');
    expect(value(actor)).toEqual({ switching: 'quiescing' });
  });

  it('ignores the death of an agent that is not the active one', async () => {
    const { actor } = start();
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'agent.dead', agentId: 'a9', reason: 'killed' });
    expect(value(actor)).toEqual({ normal: 'idle' });
  });
});

describe('coordinator machine: the switch', () => {
  it('runs begin → quiescing → fencing → choosing → draining → replaying → normal, persisting each phase', async () => {
    const { actor, emitted, calls } = await toQuiesced();
    expect(value(actor)).toEqual({ replaying: 'sending' });
    actor.send({ type: 'dispatcher.replayed', replayed: 12 });
    await reach(actor, { normal: 'idle' });
    expect(value(actor)).toEqual({ normal: 'idle' });
    expect(calls).toEqual(['loadAssignment', 'beginSwitch', 'fenceAgent', 'chooseCandidate', 'moveQueue', 'enterReplaying', 'completeSwitch']);
    expect(types(emitted)).toEqual([
      'coordinator.active',
      'switch.started',
      'coordinator.quiesce',
      'switch.phase:switching',
      'switch.phase:draining',
      'switch.phase:replaying',
      'coordinator.active',
      'switch.completed',
    ]);
    expect(emitted.find((e) => e.type === 'switch.started')).toMatchObject({ reason: 'agent a1 killed' });
    expect(actor.getSnapshot().context.assignment).toEqual(done);
  });

  it('hands the replayed count to completeSwitch, also when completing is retried', async () => {
    const seen: number[] = [];
    let fail = true;
    const { actor, clock } = await toQuiesced({
      completeSwitch: async ({ replayed }) => {
        seen.push(replayed);
        if (fail) {
          fail = false;
          throw new Error('db down');
        }
        return done;
      },
    });
    actor.send({ type: 'dispatcher.replayed', replayed: 7 });
    await reach(actor, { replaying: 'completeBackoff' });
    clock.increment(1000);
    await reach(actor, { normal: 'idle' });
    expect(seen).toEqual([7, 7]);
    expect(value(actor)).toEqual({ normal: 'idle' });
  });

  it('another runtime won the compare-and-set: reload and follow its switch', async () => {
    let loads = 0;
    const { actor, calls } = start({ loadAssignment: async () => (loads++ === 0 ? a1 : draining), beginSwitch: async () => ({ kind: 'lost' }), moveQueue: () => new Promise(() => {}) });
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    await reach(actor, 'draining');
    expect(calls).toEqual(['loadAssignment', 'beginSwitch', 'loadAssignment', 'moveQueue']);
    expect(value(actor)).toBe('draining');
  });

  it('retries begin after retryDelay when the store fails', async () => {
    let fail = true;
    const { actor, clock } = start({ beginSwitch: async () => { if (fail) { fail = false; throw new Error('db'); } return { kind: 'started', assignment: sw }; } });
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'hung' });
    await reach(actor, { switching: 'beginBackoff' });
    clock.increment(1000);
    await reach(actor, { switching: 'quiescing' });
    expect(value(actor)).toEqual({ switching: 'quiescing' });
  });

  it('goes on when fencing fails (the lease still lapses)', async () => {
    const { actor } = await toQuiesced({ fenceAgent: async () => { throw new Error('management API down'); } });
    expect(value(actor)).toEqual({ replaying: 'sending' });
  });

  it('no healthy candidate: stays switching (parking) until one appears', async () => {
    let healthy = false;
    const { actor, emitted } = await toQuiesced({ chooseCandidate: async () => (healthy ? chosen : null) });
    expect(value(actor)).toEqual({ switching: 'awaitingCandidate' });
    expect(types(emitted)).toContain('switch.phase:awaiting-candidate');
    healthy = true;
    actor.send({ type: 'agent.healthy', agentId: 'a2' });
    await reach(actor, { replaying: 'sending' });
    expect(value(actor)).toEqual({ replaying: 'sending' });
  });

  it.each([
    ['chooseCandidate', 'chooseBackoff', { switching: 'chooseBackoff' }],
    ['moveQueue', 'drainBackoff', 'drainBackoff'],
    ['enterReplaying', 'enterBackoff', { replaying: 'enterBackoff' }],
  ] as const)('retries %s after retryDelay when it fails', async (step, _, backoffState) => {
    let fail = true;
    const impl = {
      chooseCandidate: async () => chosen,
      moveQueue: async () => draining,
      enterReplaying: async () => replaying,
    }[step] as () => Promise<Assignment>;
    const { actor, clock } = await toQuiesced({ [step]: async () => { if (fail) { fail = false; throw new Error('boom'); } return impl(); } });
    expect(value(actor)).toEqual(backoffState);
    clock.increment(1000);
    await reach(actor, { replaying: 'sending' });
    expect(value(actor)).toEqual({ replaying: 'sending' });
  });

  it('losing the leadership mid-switch stops acting; winning it again resumes from the store', async () => {
    let loads = 0;
    const { actor, calls } = start({ loadAssignment: async () => (loads++ === 0 ? a1 : replaying), moveQueue: () => new Promise(() => {}) });
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    await reach(actor, { switching: 'quiescing' });
    actor.send({ type: 'dispatcher.quiesced' });
    await reach(actor, 'draining');
    actor.send({ type: 'leader.lost' });
    expect(value(actor)).toBe('following');
    actor.send({ type: 'leader.won' });
    await reach(actor, { replaying: 'sending' });
    expect(value(actor)).toEqual({ replaying: 'sending' });
    expect(calls.filter((c) => c === 'loadAssignment')).toHaveLength(2);
  });

  it('stops on coordinator.stop', async () => {
    const { actor } = start();
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'coordinator.stop' });
    expect(actor.getSnapshot().status).toBe('done');
  });
});

describe('coordinator machine: deaths seen outside normal', () => {
  it('a recorded agent already dead when this runtime takes over is switched away from at once, never activated', async () => {
    const { actor, calls, emitted } = start({}, true, new Set(['a1']));
    await reach(actor, { switching: 'quiescing' });
    expect(calls).toEqual(['loadAssignment', 'beginSwitch']);
    expect(value(actor)).toEqual({ switching: 'quiescing' });
    expect(types(emitted)).toEqual(['switch.started', 'coordinator.quiesce', 'switch.phase:switching']);
    expect(emitted[0]).toMatchObject({ reason: 'agent a1 already dead when adopted' });
  });

  it('a death that arrives while loading is acted on once the assignment is read', async () => {
    const dead = new Set<string>();
    let read!: (a: Assignment) => void;
    const { actor, calls } = start({ loadAssignment: () => new Promise((r) => (read = r)) }, true, dead);
    await reach(actor, 'loading');
    dead.add('a1');
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    read(a1);
    await reach(actor, { switching: 'quiescing' });
    expect(calls).toEqual(['loadAssignment', 'beginSwitch']);
    expect(value(actor)).toEqual({ switching: 'quiescing' });
  });

  it('an elected agent that died meanwhile is switched away from at once', async () => {
    const { actor, calls, emitted } = start({ loadAssignment: async () => null }, true, new Set(['a1']));
    await reach(actor, { switching: 'quiescing' });
    expect(calls).toEqual(['loadAssignment', 'electAgent', 'beginSwitch']);
    expect(value(actor)).toEqual({ switching: 'quiescing' });
    expect(types(emitted)).not.toContain('coordinator.active');
  });

  it('a new agent that died during the switch is switched away from as soon as the switch is complete', async () => {
    const dead = new Set<string>();
    const begun: Assignment[] = [];
    const { actor, calls, emitted } = await toQuiesced({
      beginSwitch: async ({ assignment }) => (begun.push(assignment), { kind: 'started', assignment: begun.length === 1 ? sw : { ...done, epoch: 3, lock: 1, phase: 'switching', switchId: 'sw2', previousAgent: 'a2' } }),
    }, dead);
    expect(value(actor)).toEqual({ replaying: 'sending' });
    dead.add('a2');
    actor.send({ type: 'agent.dead', agentId: 'a2', reason: 'hung' });
    actor.send({ type: 'dispatcher.replayed', replayed: 4 });
    await reach(actor, { switching: 'quiescing' });
    expect(calls.slice(-2)).toEqual(['completeSwitch', 'beginSwitch']);
    expect(begun[1]).toEqual(done);
    expect(value(actor)).toEqual({ switching: 'quiescing' });
    expect(types(emitted).slice(-4)).toEqual(['switch.completed', 'switch.started', 'coordinator.quiesce', 'switch.phase:switching']);
    expect(emitted.filter((e) => e.type === 'switch.started').at(-1)).toMatchObject({ reason: 'agent a2 dead when the switch to it completed' });
  });
});

/** Drives a planned handover from normal into `releasing` (the old agent is being asked for its lease). */
async function toReleasing(o: Partial<Steps> = {}, dead?: Set<string>, ask?: { fail?: boolean }) {
  const t = start(o, true, dead, ask);
  await reach(t.actor, { normal: 'idle' });
  t.actor.send({ type: 'coordinator.handover', to: 'a2', by: 'cli:alice' });
  await reach(t.actor, { switching: 'quiescing' });
  t.actor.send({ type: 'dispatcher.quiesced' });
  return t;
}

describe('coordinator machine: planned handover', () => {
  it('asks the old agent for its lease back instead of fencing it; once it answers for its epoch, chooses the agent named', async () => {
    const prefers: Array<string | null> = [];
    const { actor, calls, emitted, asks } = await toReleasing({ chooseCandidate: async ({ prefer }) => (prefers.push(prefer), chosen) });
    await reach(actor, { switching: 'releasing' });
    expect(emitted.find((e) => e.type === 'switch.started')).toMatchObject({ reason: 'planned handover (by cli:alice) to a2' });
    expect(asks).toMatchObject({ running: 1, inputs: [{ assignment: sw }] });
    // an answer for another epoch (an old request's, late) or from another agent is not this one's
    actor.send({ type: 'agent.released', agentId: 'a1', epoch: 2, incarnation: 'i1' });
    actor.send({ type: 'agent.released', agentId: 'a9', epoch: 1, incarnation: 'i1' });
    expect(value(actor)).toEqual({ switching: 'releasing' });
    actor.send({ type: 'agent.released', agentId: 'a1', epoch: 1, incarnation: 'i1' });
    await reach(actor, { replaying: 'sending' });
    expect(asks.running).toBe(0);
    expect(calls).toEqual(['loadAssignment', 'beginSwitch', 'awaitCaughtUp', 'askRelease', 'chooseCandidate', 'moveQueue', 'enterReplaying']);
    expect(prefers).toEqual(['a2']);
    expect(emitted.find((e) => e.type === 'handover.released')).toEqual({ type: 'handover.released', assignment: sw, agentId: 'a1', incarnation: 'i1' });
    actor.send({ type: 'dispatcher.replayed', replayed: 2 });
    await reach(actor, { normal: 'idle' });
    expect(actor.getSnapshot().context.handover).toBeNull();
  });

  it('no answer within releaseTimeout: fences as after a failure (and a late answer changes nothing)', async () => {
    const { actor, clock, calls, emitted, asks } = await toReleasing({ moveQueue: () => new Promise(() => {}) });
    await reach(actor, { switching: 'releasing' });
    clock.increment(2999);
    expect(value(actor)).toEqual({ switching: 'releasing' });
    clock.increment(1);
    await reach(actor, 'draining');
    expect(asks.running).toBe(0);
    expect(calls).toEqual(['loadAssignment', 'beginSwitch', 'awaitCaughtUp', 'askRelease', 'fenceAgent', 'chooseCandidate', 'moveQueue']);
    expect(emitted.find((e) => e.type === 'handover.fallback')).toMatchObject({ agentId: 'a1', why: 'it did not answer within 3000 ms' });
    actor.send({ type: 'agent.released', agentId: 'a1', epoch: 1, incarnation: 'i1' });
    expect(value(actor)).toBe('draining');
    expect(types(emitted)).not.toContain('handover.released');
  });

  it('catch-up: the old agent is asked for its lease only once it wrote what it was sent (or the wait failed)', async () => {
    let caughtUp!: () => void;
    const { actor, asks } = await toReleasing({ awaitCaughtUp: () => new Promise<void>((r) => (caughtUp = r)) });
    await reach(actor, { switching: 'catchingUp' });
    expect(asks.running).toBe(0);
    caughtUp();
    await reach(actor, { switching: 'releasing' });
    expect(asks.running).toBe(1);
    const failed = await toReleasing({ awaitCaughtUp: async () => Promise.reject(new Error('ledger gone')) });
    await reach(failed.actor, { switching: 'releasing' });
  });

  it('catch-up is bounded by catchUpTimeout: then the old agent is asked, and gives back what it still holds', async () => {
    const { actor, clock, asks } = await toReleasing({ awaitCaughtUp: () => new Promise(() => {}) });
    await reach(actor, { switching: 'catchingUp' });
    clock.increment(1499);
    expect(value(actor)).toEqual({ switching: 'catchingUp' });
    clock.increment(1);
    await reach(actor, { switching: 'releasing' });
    expect(asks.running).toBe(1);
  });

  it('the old agent declared dead while it catches up: fenced at once, never asked', async () => {
    const { actor, calls, emitted } = await toReleasing({ awaitCaughtUp: () => new Promise(() => {}) });
    await reach(actor, { switching: 'catchingUp' });
    actor.send({ type: 'agent.dead', agentId: 'a9', reason: 'killed' });
    expect(value(actor)).toEqual({ switching: 'catchingUp' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    await reach(actor, { replaying: 'sending' });
    expect(calls).not.toContain('askRelease');
    expect(calls).toContain('fenceAgent');
    expect(emitted.find((e) => e.type === 'handover.fallback')).toMatchObject({ why: 'it was declared dead while it wrote what it had been sent' });
  });

  it('the old agent declared dead before it answers: fenced at once', async () => {
    const { actor, calls, emitted } = await toReleasing();
    await reach(actor, { switching: 'releasing' });
    actor.send({ type: 'agent.dead', agentId: 'a9', reason: 'killed' });
    expect(value(actor)).toEqual({ switching: 'releasing' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    await reach(actor, { replaying: 'sending' });
    expect(calls).toContain('fenceAgent');
    expect(emitted.find((e) => e.type === 'handover.fallback')).toMatchObject({ why: 'it was declared dead before it answered' });
  });

  it('a release request that cannot be sent: fenced at once', async () => {
    const { actor, calls, emitted } = await toReleasing({}, undefined, { fail: true });
    await reach(actor, { replaying: 'sending' });
    expect(calls).toEqual(['loadAssignment', 'beginSwitch', 'awaitCaughtUp', 'askRelease', 'fenceAgent', 'chooseCandidate', 'moveQueue', 'enterReplaying']);
    expect(emitted.find((e) => e.type === 'handover.fallback')).toMatchObject({ why: 'the release request could not be sent: agent a1 was never heard' });
  });

  it('is taken only in normal: a failover switch, a follower and a waiting coordinator ignore it', async () => {
    const { actor, calls } = start({ moveQueue: () => new Promise(() => {}) });
    await reach(actor, { normal: 'idle' });
    actor.send({ type: 'agent.dead', agentId: 'a1', reason: 'killed' });
    await reach(actor, { switching: 'quiescing' });
    actor.send({ type: 'dispatcher.quiesced' });
    await reach(actor, 'draining');
    actor.send({ type: 'coordinator.handover', to: null, by: 'host' });
    expect(value(actor)).toBe('draining');
    expect(actor.getSnapshot().context.handover).toBeNull();
    expect(calls.filter((c) => c === 'beginSwitch')).toHaveLength(1);
    const follower = start({}, false);
    follower.actor.send({ type: 'coordinator.handover', to: null, by: 'host' });
    expect(value(follower.actor)).toBe('following');
    const waiting = start({ loadAssignment: async () => null, electAgent: async () => null });
    await reach(waiting.actor, 'awaiting');
    waiting.actor.send({ type: 'coordinator.handover', to: null, by: 'host' });
    expect(value(waiting.actor)).toBe('awaiting');
  });

  it('belongs to the leader term that began it: resumed after a leader flap, the switch fences', async () => {
    let loads = 0;
    const { actor, calls, asks } = await toReleasing({ loadAssignment: async () => (loads++ === 0 ? a1 : sw), moveQueue: () => new Promise(() => {}) });
    await reach(actor, { switching: 'releasing' });
    actor.send({ type: 'leader.lost' });
    expect(asks.running).toBe(0);
    actor.send({ type: 'leader.won' });
    await reach(actor, { switching: 'quiescing' });
    expect(actor.getSnapshot().context.handover).toBeNull();
    actor.send({ type: 'dispatcher.quiesced' });
    await reach(actor, 'draining');
    expect(calls.slice(-4)).toEqual(['loadAssignment', 'fenceAgent', 'chooseCandidate', 'moveQueue']);
  });
});

afterAll(() => {
  // every transition the coordinator defines was taken by the tests above
  expect(coverage.missing(coordinatorMachine)).toEqual([]);
});
