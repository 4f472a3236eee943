/**
 * The timeline of a run: faults, coordinator phases, agents, runtimes and devices' lines as they
 * happen, in ms since the run began. `narrate` turns what the runtimes report into entries, and fires
 * the events a scenario step can wait for (`switch.completed`, `device.blocked`, ...) on `stepEvents`.
 */
import { EventEmitter } from 'node:events';
import type { LaneReport } from '../../side-channel.ts';
import type { RuntimeFleet, RuntimeNews } from './runtime-fleet.ts';
import { cueOf } from './schema.ts';
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
  const held = new Set<string>();
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
      case 'device.line':
        // the leader's word only: every runtime may hear the same heartbeat, and the leader is the one a step's action goes to
        if (fleet.get(runtimeId)?.leading) lineChanged(held, p.deviceId as string, p.line as LaneReport | null, note, fire);
        return;
    }
  });
}

/**
 * A device's line as the leader reports it: a block or a pause is noted (and a block fires
 * `device.blocked`, for any device and for this one), and so is the line flowing again after one.
 * Retries are not noted: a flaky device reports one every few heartbeats. `held`: the devices noted
 * blocked or paused.
 */
function lineChanged(held: Set<string>, deviceId: string, line: LaneReport | null, note: (kind: TimelineEntry['kind'], text: string) => void, fire: (event: string) => void): void {
  if (line?.state === 'blocked') {
    held.add(deviceId);
    note('device', `${deviceId} blocked at seq ${line.seq} (${line.status === null ? 'refused' : `device answered ${line.status}`})`); // the whole reason is long: the device view has it
    fire(cueOf({ event: 'device.blocked' }));
    fire(cueOf({ event: 'device.blocked', device: deviceId }));
  } else if (line?.state === 'paused') {
    held.add(deviceId);
    note('device', `${deviceId} paused (${line.held} held)`);
  } else if (held.delete(deviceId)) note('device', `${deviceId} ${line ? `${line.state} at seq ${line.seq}` : 'flows'}`);
}
