// Paths through the coordinator from xstate/graph: every state is reachable from the start with
// the events the runtime really sends (step outcomes included), and each path replays to its state.
import { describe, expect, it } from 'vitest';
import { createActor, fromPromise, type AnyStateNode } from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { coordinatorMachine, type CoordinatorEvent } from '../../machines/coordinator.machine.ts';
import { a1, chosen, done, draining, replaying, sw } from '../support/assignments.ts';


/** What each step can answer. */
const outputs: Record<string, unknown[]> = {
  loadAssignment: [null, a1, sw, chosen, draining, replaying],
  electAgent: [null, a1],
  checkAgent: [{ verdict: 'healthy' }, { verdict: 'switch', why: 'no consumer' }],
  beginSwitch: [{ kind: 'started', assignment: sw }, { kind: 'lost' }],
  fenceAgent: [undefined],
  chooseCandidate: [chosen, null],
  moveQueue: [draining],
  enterReplaying: [replaying],
  completeSwitch: [done],
};

const nodes: AnyStateNode[] = getStateNodes(coordinatorMachine.root);
const events: CoordinatorEvent[] = [
  { type: 'leader.won' },
  { type: 'leader.lost' },
  { type: 'agent.healthy', agentId: 'a2' },
  { type: 'agent.dead', agentId: 'a1', reason: 'killed' },
  { type: 'dispatcher.quiesced' },
  { type: 'dispatcher.replayed', replayed: 3 },
  { type: 'coordinator.stop' },
];
for (const node of nodes) {
  for (const inv of node.invoke) {
    for (const output of outputs[inv.src as string] ?? []) events.push({ type: `xstate.done.actor.${inv.id}`, output } as never);
    events.push({ type: `xstate.error.actor.${inv.id}`, error: new Error('step failed') } as never);
  }
  for (const after of node.after) events.push({ type: after.eventType } as never);
}

// transient states (only `always` transitions) are passed through, never rested in
const leafIds = nodes.filter((n) => (n.type === 'atomic' || n.type === 'final') && !n.always?.length).map((n) => n.id);

describe('coordinator paths (xstate/graph)', () => {
  const paths = getShortestPaths(coordinatorMachine, {
    events,
    input: { checkAgentLoopTime: 30_000 },
    serializeState: (s: { value: unknown }) => JSON.stringify(s.value),
  } as never);

  it('reaches every state from the start', () => {
    const reached = new Set<string>();
    for (const p of paths) for (const n of (p.state as { _nodes: AnyStateNode[] })._nodes) reached.add(n.id);
    expect(leafIds.filter((id) => !reached.has(id))).toEqual([]);
    expect(paths.length).toBeGreaterThanOrEqual(leafIds.length);
  });

  it('every path replays on a live actor to the state it names', () => {
    // steps never settle by themselves: the path's own events drive the machine
    const never = Object.fromEntries(Object.keys(outputs).map((k) => [k, fromPromise(() => new Promise<never>(() => {}))]));
    for (const p of paths) {
      const actor = createActor(coordinatorMachine.provide({ actors: never as never }), { input: { checkAgentLoopTime: 30_000 } });
      actor.start();
      for (const step of p.steps.slice(1)) actor.send(step.event as never);
      expect(actor.getSnapshot().value, p.steps.map((s) => s.event.type).join(' → ')).toEqual(p.state.value);
      actor.stop();
    }
  });
});
