// xstate/graph paths over every machine: each state is reachable with the events the runtime
// sends, every path replays on a live actor to the state it names, and together the paths take
// every transition the definition has.
import { describe, expect, it } from 'vitest';
import { agentMachine } from '../../machines/agent.machine.ts';
import { coordinatorMachine } from '../../machines/coordinator.machine.ts';
import { dispatcherMachine, type OutgoingMessage } from '../../machines/dispatcher.machine.ts';
import { a1, chosen, done, draining, replaying, sw } from '../support/assignments.ts';
import { explorePaths, type PathSpec } from '../support/machine-paths.ts';

const gone = { ...a1, agentId: 'gone', topic: 'q.gone' };
const message: OutgoingMessage = { deviceId: 'd1', seq: 1, method: 'PUT', path: '/p/1', body: null };

const specs: Record<string, PathSpec> = {
  coordinator: {
    machine: coordinatorMachine,
    input: { checkAgentLoopTime: 30_000 },
    events: [
      { type: 'leader.won' },
      { type: 'leader.lost' },
      { type: 'agent.healthy', agentId: 'a2' },
      { type: 'agent.dead', agentId: 'a1', reason: 'killed' },
      { type: 'agent.dead', agentId: 'a9', reason: 'killed' },
      { type: 'dispatcher.quiesced' },
      { type: 'dispatcher.replayed', replayed: 3 },
      { type: 'coordinator.handover', to: 'a2', by: 'host' },
      // the old agent of `sw`, for the epoch it held
      { type: 'agent.released', agentId: 'a1', epoch: 1, incarnation: 'i1' },
      { type: 'coordinator.stop' },
    ] as never,
    // a planned switch takes other steps than one for a failure
    distinguish: (c: { handover: unknown }) => c.handover !== null,
    // an agent the runtime's registry holds dead
    guards: { agentDead: (_: unknown, { agentId }: { agentId: string }) => agentId === gone.agentId },
    outputs: {
      loadAssignment: [null, a1, gone, sw, chosen, draining, replaying],
      electAgent: [null, a1, gone],
      checkAgent: [{ verdict: 'healthy' }, { verdict: 'switch', why: 'no consumer' }],
      beginSwitch: [{ kind: 'started', assignment: sw }, { kind: 'lost' }],
      fenceAgent: [undefined],
      chooseCandidate: [chosen, null],
      moveQueue: [draining],
      enterReplaying: [replaying],
      completeSwitch: [done, { ...done, agentId: gone.agentId }],
    },
  },
  dispatcher: {
    machine: dispatcherMachine,
    input: { retryDelay: 500 },
    events: [
      { type: 'dispatch.message', message, reply: { resolve: () => {}, reject: () => {} } },
      { type: 'dispatcher.resume', target: { agentId: 'a1', queue: 'q.a1', epoch: 1 } },
      { type: 'dispatcher.quiesce' },
      { type: 'dispatcher.stop' },
    ] as never,
    outputs: { replayParked: [0, 5] },
    distinguish: (c: { parkedWhileReplaying: number; held: unknown }) => [c.parkedWhileReplaying > 0, c.held !== null],
  },
  agent: {
    machine: agentMachine,
    input: { agentId: 'a1', heartbeatTimeout: 1000, hungTimeout: 2000, consumerGrace: 100 },
    events: [{ type: 'agent.heartbeat' }, { type: 'agent.probe', consumers: 0 }, { type: 'agent.probe', consumers: 1 }, { type: 'agent.activate' }, { type: 'agent.deactivate' }] as never,
  },
};

describe.each(Object.keys(specs))('%s paths (xstate/graph)', (name) => {
  const report = explorePaths(specs[name]!);

  it('reaches every state from the start', () => {
    expect(report.unreached).toEqual([]);
    expect(report.paths).toBeGreaterThan(1);
  });

  it('every path replays on a live actor to the state it names', () => {
    expect(report.mismatched).toEqual([]);
  });

  it('the paths together take every transition of the definition', () => {
    expect(report.untaken).toEqual([]);
  });
});

describe('dispatcher: no event dropped', () => {
  // every event the runtime sends it is handled, or ignored on purpose, in every state (issue 12:
  // a resume dropped while quiescing parked everything until the next switch)
  it('handles or explicitly ignores every event in every state', () => {
    expect(explorePaths(specs.dispatcher!).unhandled).toEqual([]);
  });
});
