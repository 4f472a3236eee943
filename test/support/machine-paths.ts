// Paths through a machine from xstate/graph: every state reachable from the start with the events
// the runtime really sends (invoked steps' outcomes and delays included), each path replayed on a
// live actor, and the transitions those replays (and one event more from each) took.
import { createActor, fromPromise, type AnyStateMachine, type AnyStateNode } from 'xstate';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { TransitionCoverage } from './transition-coverage.ts';

export interface PathSpec {
  machine: AnyStateMachine;
  input: unknown;
  /** events from outside the machine */
  events: Array<{ type: string }>;
  /** what each invoked step can answer (by `src`) */
  outputs?: Record<string, unknown[]>;
  /** what of the context tells states apart for the guards (default: nothing, states by value) */
  distinguish?: (context: never) => unknown;
  /** guards the runtime provides from the world outside the machine, answered here from the event or context */
  guards?: Record<string, unknown>;
}

export interface PathReport {
  /** leaf states no path reaches */
  unreached: string[];
  paths: number;
  /** paths whose replay did not end in the state the path names */
  mismatched: string[];
  /** transitions no replayed path took */
  untaken: string[];
  /** `state: event` for each event from outside that a (non-final) state neither handles nor
   * explicitly ignores (`{}`), itself or through an ancestor: xstate drops those silently */
  unhandled: string[];
}

export function explorePaths(spec: PathSpec): PathReport {
  const machine = spec.guards ? spec.machine.provide({ guards: spec.guards as never }) : spec.machine;
  const nodes: AnyStateNode[] = getStateNodes(machine.root);
  const events = [...spec.events];
  for (const node of nodes) {
    for (const inv of node.invoke) {
      for (const output of spec.outputs?.[inv.src as string] ?? [undefined]) events.push({ type: `xstate.done.actor.${inv.id}`, output } as never);
      events.push({ type: `xstate.error.actor.${inv.id}`, error: new Error('step failed') } as never);
    }
    for (const after of node.after) events.push({ type: after.eventType });
  }
  const paths = getShortestPaths(machine, { events, input: spec.input, serializeState: (s: { value: unknown; context: never }) => JSON.stringify([s.value, spec.distinguish?.(s.context) ?? null]) } as never);

  // transient states (only `always` transitions) are passed through, never rested in
  const leafIds = nodes.filter((n) => (n.type === 'atomic' || n.type === 'final') && !n.always?.length).map((n) => n.id);
  const reached = new Set<string>();
  for (const p of paths) for (const n of (p.state as { _nodes: AnyStateNode[] })._nodes) reached.add(n.id);

  // steps never settle by themselves: the path's own events drive the machine
  const srcs = new Set(nodes.flatMap((n) => n.invoke.map((i) => i.src as string)));
  const never = Object.fromEntries([...srcs].map((k) => [k, fromPromise(() => new Promise<never>(() => {}))]));
  const coverage = new TransitionCoverage();
  const mismatched: string[] = [];
  const replay = (p: (typeof paths)[number], extra?: { type: string }) => {
    const actor = createActor(machine.provide({ actors: never as never }), { input: spec.input, inspect: coverage.inspect });
    actor.start();
    for (const step of p.steps.slice(1)) actor.send(step.event as never);
    const value = actor.getSnapshot().value;
    // an unhandled error event would fail the actor: only events the state takes
    if (extra && actor.getSnapshot().can(extra as never)) actor.send(extra as never);
    actor.stop();
    return value;
  };
  for (const p of paths) {
    if (JSON.stringify(replay(p)) !== JSON.stringify(p.state.value)) mismatched.push(p.steps.map((s) => s.event.type).join(' → '));
    // one event more from every state reached: the transitions that lead nowhere new are taken too
    for (const e of events) replay(p, e);
  }
  const unhandled: string[] = [];
  for (const n of nodes.filter((x) => x.type === 'atomic' && !x.always?.length)) {
    for (const type of new Set(spec.events.map((e) => e.type))) {
      let handled = false;
      for (let a: AnyStateNode | undefined = n; a && !handled; a = a.parent) handled = a.transitions.has(type);
      if (!handled) unhandled.push(`${n.id}: ${type}`);
    }
  }
  return { unreached: leafIds.filter((id) => !reached.has(id)), paths: paths.length, mismatched, untaken: coverage.missing(machine), unhandled };
}
