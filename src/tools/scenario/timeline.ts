/**
 * The timeline of a run: faults, coordinator phases, agents and runtimes as they happen, in ms since
 * the run began. `narrate` turns what the runtimes report into entries, and fires the events a
 * scenario step can wait for (`switch.completed`, ...) on `stepEvents`.
 */
import { EventEmitter } from 'node:events';
import type { RuntimeFleet, RuntimeNews } from './runtime-fleet.ts';
import type { TimelineEntry } from './types.ts';

export class Timeline {
  readonly entries: TimelineEntry[] = [];
  readonly t0 = performance.now();
  /** the events timeline steps wait for */
  readonly stepEvents = new EventEmitter();

  constructor(private readonly onEntry?: (e: TimelineEntry) => void) {
    this.stepEvents.setMaxListeners(0); // one listener per step waiting for an event, however many the scenario has
  }

  note(kind: TimelineEntry['kind'], text: string): void {
    const e = { t: Math.round(performance.now() - this.t0), kind, text };
    this.entries.push(e);
    this.onEntry?.(e);
  }
}

export function narrate(fleet: RuntimeFleet, timeline: Timeline): void {
  const note = (kind: TimelineEntry['kind'], text: string) => timeline.note(kind, text);
  const fire = (event: string) => timeline.stepEvents.emit(event);
  fleet.events.on('event', ({ runtimeId, name, payload: p }: RuntimeNews) => {
    const a = p.assignment as { agentId: string; epoch: number } | undefined;
    switch (name) {
      case 'leader.won':
        return note('leader', `${runtimeId} leads`);
      case 'leader.lost':
        return note('leader', `${runtimeId} stands by`);
      case 'agent.dead':
        return note('agent', `${p.agentId} dead (${p.reason})`);
      case 'agent.alive':
        return note('agent', `${p.agentId} alive`);
      case 'switch.started':
        return note('phase', `switching (epoch ${a!.epoch})`);
      case 'switch.phase':
        if (p.phase !== 'switching') note('phase', String(p.phase));
        if (p.phase === 'awaiting-candidate') fire('switch.awaiting-candidate');
        if (p.phase === 'replaying') fire('switch.replaying');
        return;
      case 'switch.completed':
        note('phase', `normal (${a!.agentId})`);
        return fire('switch.completed');
    }
  });
}
