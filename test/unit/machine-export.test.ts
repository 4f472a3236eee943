import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { machines, toDot, toGraph, toMermaid } from '../../src/inspector/machine-export.ts';

const charts = readFileSync(new URL('../../docs/statecharts.md', import.meta.url), 'utf8');

describe('machine export', () => {
  it.each(Object.keys(machines))('docs/statecharts.md shows the current %s diagram', (name) => {
    expect(charts).toContain('```mermaid\n' + toMermaid(machines[name]!) + '\n```');
  });

  it('draws every state and transition of the definition', () => {
    const g = toGraph(machines.coordinator!);
    expect(g.nodes.map((n) => n.id)).toContain('coordinator.switching.awaitingCandidate');
    expect(g.edges).toContainEqual({ source: 'coordinator.normal', target: 'coordinator.switching', label: 'agent.dead' });
    expect(g.edges).toContainEqual({ source: 'coordinator.draining', target: 'coordinator.replaying', label: 'done: moveQueue' });
    expect(g.edges).toContainEqual({ source: 'coordinator.loadBackoff', target: 'coordinator.loading', label: 'after retryDelay' });
    expect(toMermaid(machines.agent!)).toMatch(/agent_dead --> agent_live_idle: agent\.heartbeat/);
    expect(toDot(machines.dispatcher!)).toMatch(/"dispatcher\.parking" -> "dispatcher\.replaying" \[label="dispatcher\.resume"\]/);
  });
});
