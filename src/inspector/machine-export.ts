/** Statecharts as data, drawn from the machine definitions themselves: JSON for the inspector, Mermaid and DOT for people. */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { agentMachine } from '../../machines/agent.machine.ts';
import { coordinatorMachine } from '../../machines/coordinator.machine.ts';
import { dispatcherMachine } from '../../machines/dispatcher.machine.ts';

export interface StateGraphNode {
  /** dotted path, e.g. `coordinator.switching.quiescing` */
  id: string;
  key: string;
  parent: string | null;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  initial: string | null;
  /** what the state runs while it is active */
  invokes: string[];
}

export interface StateGraphEdge {
  source: string;
  target: string;
  /** a readable event: `agent.dead`, `after retryDelay`, `done: moveQueue`, `always` */
  label: string;
}

export interface StateGraph {
  id: string;
  nodes: StateGraphNode[];
  edges: StateGraphEdge[];
}

/** The machines baton runs, by name. */
export const machines: Record<string, AnyStateMachine> = {
  coordinator: coordinatorMachine,
  dispatcher: dispatcherMachine,
  agent: agentMachine,
};

function label(node: AnyStateNode, eventType: string): string {
  if (eventType === '') return 'always';
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return `after ${after[1]}`;
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(eventType);
  if (actor) {
    const inv = node.invoke.find((i) => i.id === actor[2]);
    return `${actor[1]}: ${String(inv?.src ?? actor[2])}`;
  }
  return eventType;
}

/** Nodes and edges of a machine's definition. */
export function toGraph(machine: AnyStateMachine): StateGraph {
  const nodes: StateGraphNode[] = [];
  const edges: StateGraphEdge[] = [];
  for (const n of [machine.root, ...getStateNodes(machine.root)]) {
    const initialTarget = n.type === 'compound' ? n.initial?.target?.[0] : undefined;
    nodes.push({
      id: n.id,
      key: n.key,
      parent: n.parent ? n.parent.id : null,
      type: n.type as StateGraphNode['type'],
      initial: initialTarget ? initialTarget.id : null,
      invokes: n.invoke.map((i) => String(i.src)),
    });
    const all: Array<[string, Array<{ target?: readonly AnyStateNode[] | undefined }>]> = [...n.transitions.entries()];
    if (n.always?.length) all.push(['', n.always]);
    for (const [eventType, list] of all) {
      for (const t of list) {
        for (const target of t.target ?? []) edges.push({ source: n.id, target: target.id, label: label(n, eventType) });
      }
    }
  }
  return { id: machine.id, nodes, edges };
}

const mermaidId = (id: string) => id.replace(/[^A-Za-z0-9]/g, '_');

/** Mermaid `stateDiagram-v2` text of a machine. */
export function toMermaid(machine: AnyStateMachine): string {
  const g = toGraph(machine);
  const children = (parent: string) => g.nodes.filter((n) => n.parent === parent);
  const lines = ['stateDiagram-v2'];
  const emit = (parent: string, indent: string) => {
    const p = g.nodes.find((n) => n.id === parent)!;
    if (p.initial) lines.push(`${indent}[*] --> ${mermaidId(p.initial)}`);
    for (const c of children(parent)) {
      const id = mermaidId(c.id);
      if (c.type === 'compound' || c.type === 'parallel') {
        lines.push(`${indent}state "${c.key}" as ${id} {`);
        emit(c.id, indent + '  ');
        lines.push(`${indent}}`);
      } else {
        lines.push(`${indent}state "${c.type === 'history' ? 'H' : c.key}" as ${id}`);
        if (c.type === 'final') lines.push(`${indent}${id} --> [*]`);
      }
    }
  };
  emit(g.id, '  ');
  // transitions of the machine itself apply in every state
  if (g.edges.some((e) => e.source === g.id)) lines.push(`  state "(any state)" as ${mermaidId(g.id)}_any`);
  const seen = new Set<string>();
  for (const e of g.edges) {
    const source = e.source === g.id ? `${mermaidId(g.id)}_any` : mermaidId(e.source);
    const line = `  ${source} --> ${mermaidId(e.target)}: ${e.label.replace(/:/g, ' ·')}`;
    if (!seen.has(line)) lines.push(line);
    seen.add(line);
  }
  return lines.join('\n');
}

/** Graphviz DOT text of a machine (compound states as clusters). */
export function toDot(machine: AnyStateMachine): string {
  const g = toGraph(machine);
  const lines = [`digraph "${g.id}" {`, '  compound=true; rankdir=LR; node [shape=box, style=rounded];'];
  const emit = (parent: string, indent: string) => {
    for (const c of g.nodes.filter((n) => n.parent === parent)) {
      if (c.type === 'compound' || c.type === 'parallel') {
        lines.push(`${indent}subgraph "cluster_${c.id}" { label="${c.key}";`);
        lines.push(`${indent}  "${c.id}" [shape=point, style=invis];`);
        emit(c.id, indent + '  ');
        lines.push(`${indent}}`);
      } else {
        lines.push(`${indent}"${c.id}" [label="${c.type === 'history' ? 'H' : c.key}"${c.type === 'final' ? ', peripheries=2' : ''}];`);
      }
    }
  };
  emit(g.id, '  ');
  for (const e of g.edges) lines.push(`  "${e.source}" -> "${e.target}" [label="${e.label}"];`);
  lines.push('}');
  return lines.join('\n');
}
