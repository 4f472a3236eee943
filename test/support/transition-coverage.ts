// Which transitions of a machine definition the tests took: every one must be.
import type { AnyStateMachine, AnyStateNode, InspectionEvent } from 'xstate';
import { getStateNodes } from 'xstate/graph';

type Transition = { source: AnyStateNode; eventType: string };

const keyOf = (t: Transition): string => {
  const list = t.eventType === '' ? t.source.always ?? [] : t.source.transitions.get(t.eventType) ?? [];
  const i = (list as unknown[]).indexOf(t);
  return `${t.source.id} --${t.eventType || 'always'}${list.length > 1 ? `[${i}]` : ''}-->`;
};

/** A transition with no target and no actions only blocks an outer one; xstate reports nothing when it is taken. */
const unobservable = (t: { target?: unknown[]; actions?: unknown[] }) => !t.target?.length && !t.actions?.length;

/** Every transition a machine defines that a run can be seen to take, as readable keys. */
export function allTransitions(machine: AnyStateMachine): string[] {
  const keys: string[] = [];
  for (const node of [machine.root, ...getStateNodes(machine.root)]) {
    for (const list of node.transitions.values()) for (const t of list) if (!unobservable(t as never)) keys.push(keyOf(t as unknown as Transition));
    for (const t of node.always ?? []) keys.push(keyOf(t as unknown as Transition));
  }
  return [...new Set(keys)].sort();
}

/** Collects the transitions taken by actors created with `{ inspect: coverage.inspect }`. */
export class TransitionCoverage {
  readonly taken = new Set<string>();
  inspect = (e: InspectionEvent) => {
    if (e.type !== '@xstate.microstep') return;
    for (const t of e._transitions) this.taken.add(keyOf(t as unknown as Transition));
  };
  missing(machine: AnyStateMachine): string[] {
    return allTransitions(machine).filter((k) => !this.taken.has(k));
  }
}
