/**
 * Alarms, without I/O: the book of open alarms (each raised once when its condition begins and
 * cleared once when it ends, under an id that stays the same while it lasts) and the rules that say,
 * from the facts of a moment, which state and threshold alarms are wanted. alarm-watch.ts feeds them
 * from the runtime's events and a periodic check, and publishes each change (the event, the log
 * line, the metrics). Every method returns what changed instead of doing anything about it.
 *
 * An alarm's text names its condition and only that (no age, no count that moves while it lasts):
 * a wanted alarm whose text differs from the open one's is another condition, e.g. a line blocked
 * at another seq after an operator skipped the first, and is cleared and raised again.
 */
import type { Alarm } from '../api.ts';
import type { Clock } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';

export type AlarmKind = Alarm['kind'];
export const ALARM_KINDS: readonly AlarmKind[] = ['device-blocked', 'device-lagging', 'switch-slow', 'no-healthy-agent', 'dead-letter'];

/** An alarm a condition asks for: `since` is set by the book when it raises it. */
export type Wanted = Omit<Alarm, 'since'>;

export type AlarmChange = { type: 'raised'; alarm: Alarm } | { type: 'cleared'; alarm: Alarm; clearedAt: number };

export class AlarmBook {
  private readonly open = new Map<string, Alarm>();

  constructor(private readonly clock: Pick<Clock, 'now'>) {}

  /** Raises `w`, unless an alarm with its id is open: its condition still lasts, nothing changes. */
  raise(w: Wanted): AlarmChange[] {
    if (this.open.has(w.id)) return [];
    const alarm: Alarm = { ...w, since: this.clock.now() };
    this.open.set(w.id, alarm);
    return [{ type: 'raised', alarm }];
  }

  /** Clears the alarm `id` if it is open. */
  clear(id: string): AlarmChange[] {
    const alarm = this.open.get(id);
    if (!alarm) return [];
    this.open.delete(id);
    return [{ type: 'cleared', alarm, clearedAt: this.clock.now() }];
  }

  /**
   * The open alarms of `kind` become exactly `wanted`: an open one not wanted clears, a wanted one
   * not open raises, one open under another text clears and raises again (another condition).
   */
  reconcile(kind: AlarmKind, wanted: readonly Wanted[]): AlarmChange[] {
    const want = new Map(wanted.filter((w) => w.kind === kind).map((w) => [w.id, w]));
    const out: AlarmChange[] = [];
    for (const a of this.ofKind(kind)) {
      const w = want.get(a.id);
      if (!w || w.text !== a.text) out.push(...this.clear(a.id));
    }
    for (const w of want.values()) out.push(...this.raise(w));
    return out;
  }

  clearAll(): AlarmChange[] {
    return [...this.open.keys()].flatMap((id) => this.clear(id));
  }

  isOpen(id: string): boolean {
    return this.open.has(id);
  }

  ofKind(kind: AlarmKind): Alarm[] {
    return [...this.open.values()].filter((a) => a.kind === kind);
  }

  /** The open alarms, the oldest first (raised in the same ms: by id). */
  list(): Alarm[] {
    return [...this.open.values()].sort((a, b) => a.since - b.since || a.id.localeCompare(b.id));
  }
}

/** The phase a switch is in, and since when (this runtime's monotonic clock). */
export interface PhaseSpan {
  switchId: string | null;
  /** the agent switched away from */
  from: string | null;
  phase: string;
  since: number;
}

/** What the state and threshold alarms are judged on, at one moment. */
export interface AlarmFacts {
  /** only the leading runtime raises alarms about deliveries */
  leading: boolean;
  /** this runtime's monotonic clock, ms */
  now: number;
  /** the lines the active agent reported not flowing at its newest heartbeat (configured devices only) */
  lanes: readonly LaneReport[];
  /** per configured device with messages not yet applied: when the oldest of them was handed out (monotonic, ms) */
  oldest: ReadonlyArray<readonly [deviceId: string, since: number]>;
  /** since when no agent has been active or idle with current heartbeats (monotonic, ms), or null: one is */
  noHealthyAgentSince: number | null;
  /** the switch under way, or null */
  phase: PhaseSpan | null;
}

export interface AlarmThresholds {
  /** `alarmLagMs` */
  lagMs: number;
  /** `alarmSwitchPhaseMs` */
  switchPhaseMs: number;
  /**
   * how long no healthy agent counts as none (`heartbeatTimeout`): a runtime that starts, or begins
   * to lead, hears its agents within a heartbeat; it is not an alarm that it has not yet
   */
  noAgentMs: number;
}

/** The kinds judged from the facts (a dead letter is an event, and its end a question to the store). */
export const STATE_KINDS = ['device-blocked', 'device-lagging', 'switch-slow', 'no-healthy-agent'] as const satisfies readonly AlarmKind[];

const clip = (s: string, n = 200) => (s.length > n ? `${s.slice(0, n)}…` : s);

export function blockedAlarm(l: Extract<LaneReport, { state: 'blocked' }>): Wanted {
  const answer = `${l.status !== null ? `status ${l.status}` : 'no status'}${l.response ? `, answer ${JSON.stringify(clip(l.response))}` : ''}`;
  return {
    id: `device-blocked:${l.deviceId}`,
    kind: 'device-blocked',
    subject: l.deviceId,
    text: `device ${l.deviceId}: its line is blocked at seq ${l.seq}, which the device refused (${answer}: ${clip(l.reason)}); nothing after it is delivered until an operator unblocks it (retry once the device is fixed, or skip)`,
  };
}

export function laggingAlarm(deviceId: string, lagMs: number): Wanted {
  return {
    id: `device-lagging:${deviceId}`,
    kind: 'device-lagging',
    subject: deviceId,
    text: `device ${deviceId}: a message has waited more than ${lagMs} ms (alarmLagMs) to be applied; baton devices shows how its line stands`,
  };
}

export function switchSlowAlarm(p: PhaseSpan, ms: number): Wanted {
  return {
    id: 'switch-slow',
    kind: 'switch-slow',
    subject: p.switchId,
    text: `switch ${p.switchId ?? '?'} away from agent ${p.from ?? '?'} has been in phase ${p.phase} for more than ${ms} ms (alarmSwitchPhaseMs); messages are parked until it completes`,
  };
}

export const NO_HEALTHY_AGENT: Wanted = {
  id: 'no-healthy-agent',
  kind: 'no-healthy-agent',
  subject: null,
  text: 'no agent is healthy (active, or idle with current heartbeats): messages are parked in PostgreSQL and none is delivered until an agent heartbeats',
};

export function deadLetterAlarm(deviceId: string, seq: number, reason: string): Wanted {
  return {
    id: `dead-letter:${deviceId}`,
    kind: 'dead-letter',
    subject: deviceId,
    text: `device ${deviceId} has an open dead letter (seq ${seq}: ${clip(reason)}); the alarm lasts until none of its dead letters is open (resent, dropped, retried or skipped by an operator)`,
  };
}

/**
 * The state and threshold alarms wanted now. A device counts as lagging once its oldest message
 * not yet applied is older than the threshold, unless its line is paused: an operator's pause holds
 * messages on purpose. No healthy agent counts once it lasted a heartbeat timeout. Nothing is
 * wanted from a runtime that does not lead.
 */
export function wantedAlarms(f: AlarmFacts, t: AlarmThresholds): Wanted[] {
  if (!f.leading) return [];
  const out: Wanted[] = [];
  const paused = new Set<string>();
  for (const l of f.lanes) {
    if (l.state === 'blocked') out.push(blockedAlarm(l));
    if (l.state === 'paused') paused.add(l.deviceId);
  }
  for (const [deviceId, since] of f.oldest) if (f.now - since > t.lagMs && !paused.has(deviceId)) out.push(laggingAlarm(deviceId, t.lagMs));
  if (f.phase && f.now - f.phase.since > t.switchPhaseMs) out.push(switchSlowAlarm(f.phase, t.switchPhaseMs));
  if (f.noHealthyAgentSince !== null && f.now - f.noHealthyAgentSince >= t.noAgentMs) out.push(NO_HEALTHY_AGENT);
  return out;
}
