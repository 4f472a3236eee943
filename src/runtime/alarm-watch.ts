/**
 * The alarms wired to their sources (the bookkeeping and the rules are alarms.ts): the runtime's
 * own events (a line report, an agent's death or return, a switch's phases, a dead letter, an
 * operator's action, the leadership) and a periodic check, which judges the thresholds (the age of
 * a device's oldest unapplied message, the time a switch spends in one phase). Each change becomes
 * an `alarm.raised` or `alarm.cleared` event, a log line (error when raised, info when cleared) and
 * the `baton_alarms_*` metrics.
 *
 * Only the leading runtime raises alarms (they are about deliveries, which only it sees); one that
 * stops leading, or stops, clears all of its own. A dead letter's alarm ends when the store says the
 * device has no open dead letter any more: asked after each operator action on the device or on a
 * dead letter; an answer that a newer dead letter or another leader term overtook is not acted on.
 */
import type { Logger } from 'pino';
import type { Alarm, RuntimeEvents } from '../api.ts';
import type { RuntimeConfig } from '../config.ts';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { Clock } from '../ports.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { ALARM_KINDS, AlarmBook, deadLetterAlarm, STATE_KINDS, wantedAlarms, type AlarmChange, type AlarmFacts, type PhaseSpan } from './alarms.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { Emit, RuntimeEventEmitter } from './events.ts';
import type { Metrics } from './metrics.ts';

/** the longest between two checks of the thresholds, ms (shorter when a threshold is) */
const CHECK_MS = 1000;
/** open dead letters a new leader reads to raise their alarms, at most */
const OPEN_DEAD_LETTERS_READ = 1000;

/** What the watch asks the store: open dead letters, of one device or of any, newest first. */
export interface OpenDeadLetters {
  listDeadLetters(filter: { deviceId?: string; open: true; limit: number }): Promise<ReadonlyArray<{ deviceId: string; seq: number; reason: string }>>;
}

export interface AlarmWatchDeps {
  cfg: Pick<RuntimeConfig, 'devices' | 'alarmLagMs' | 'alarmSwitchPhaseMs' | 'heartbeatTimeout'>;
  clock: Clock;
  log: Logger;
  deviceSet: ReadonlySet<string>;
  events: Pick<RuntimeEventEmitter, 'on'>;
  emit: Emit;
  metrics: Pick<Metrics, 'onAlarm' | 'zeroAlarms'>;
  leading(): boolean;
  registry: Pick<AgentRegistry, 'healthy' | 'lanes'>;
  /** the agent in use (null: none) */
  activeAgent(): string | null;
  ledger: Pick<AppliedLedger, 'oldestOutstanding'>;
  store: OpenDeadLetters;
}

export class AlarmWatch {
  private readonly book: AlarmBook;
  private phase: PhaseSpan | null = null;
  /** since when this leader has seen no healthy agent (monotonic), or null */
  private noHealthyAgentSince: number | null = null;
  /** dead letters heard per device: a store answer asked before the newest one cannot clear its alarm */
  private readonly heard = new Map<string, number>();
  /** counts leader terms (and the stop): a store answer from an earlier one is dropped */
  private term = 0;
  /** how often `check` runs, ms */
  readonly every: number;

  constructor(private readonly d: AlarmWatchDeps) {
    this.book = new AlarmBook(d.clock);
    this.every = Math.min(CHECK_MS, d.cfg.alarmLagMs, d.cfg.alarmSwitchPhaseMs);
    d.metrics.zeroAlarms(ALARM_KINDS);
    this.listen();
  }

  /** `runtime.alarms()`: the open alarms, the oldest first */
  readonly list = (): Alarm[] => this.book.list();

  /** Judges the state and threshold alarms now: periodically, and after each event that may change one. */
  readonly check = (): void => {
    if (!this.d.leading()) return this.publish(this.book.clearAll());
    const { cfg } = this.d;
    const wanted = wantedAlarms(this.facts(), { lagMs: cfg.alarmLagMs, switchPhaseMs: cfg.alarmSwitchPhaseMs, noAgentMs: cfg.heartbeatTimeout });
    for (const kind of STATE_KINDS) this.publish(this.book.reconcile(kind, wanted));
  };

  /** The runtime stops: none of its alarms stays open. */
  readonly stop = (): void => this.endTerm();

  private facts(): AlarmFacts {
    const { d } = this;
    const agentId = d.activeAgent();
    const now = d.clock.monotonic();
    if (d.registry.healthy().length > 0) this.noHealthyAgentSince = null;
    else this.noHealthyAgentSince ??= now;
    const oldest: Array<[string, number]> = [];
    for (const deviceId of d.cfg.devices) {
      const since = d.ledger.oldestOutstanding(deviceId);
      if (since !== null) oldest.push([deviceId, since]);
    }
    return {
      leading: true,
      now,
      lanes: agentId === null ? [] : d.registry.lanes(agentId).filter((l) => d.deviceSet.has(l.deviceId)),
      oldest,
      noHealthyAgentSince: this.noHealthyAgentSince,
      phase: this.phase,
    };
  }

  private listen(): void {
    const { on } = this.d.events;
    const check = () => this.check();
    for (const k of ['device.line', 'agent.dead', 'agent.alive', 'agent.registered', 'coordinator.active'] as const) on(k, check);
    on('switch.started', ({ assignment }) => this.enterPhase(assignment, 'switching'));
    on('switch.phase', ({ assignment, phase }) => this.enterPhase(assignment, phase));
    on('switch.completed', () => ((this.phase = null), this.check()));
    on('leader.won', () => {
      this.noHealthyAgentSince = null;
      void this.raiseStoredDeadLetters(++this.term);
      this.check();
    });
    on('leader.lost', () => this.endTerm());
    on('message.dead-lettered', (e) => this.deadLettered(e));
    on('action.done', ({ entry }) => void this.recheckDeadLetters(entry.target));
    // a retry the operator ordered was applied later, when its receipt came: its dead letter is settled then
    on('dead-letter.resolved', ({ deviceId }) => void this.recheckDeadLetters(deviceId));
  }

  private endTerm(): void {
    this.term++;
    this.phase = null;
    this.noHealthyAgentSince = null;
    this.publish(this.book.clearAll());
  }

  /** the phase's clock starts when the switch enters it (the same phase told again keeps it) */
  private enterPhase(a: Assignment, phase: string): void {
    const p = this.phase;
    if (!p || p.phase !== phase || p.switchId !== a.switchId) this.phase = { switchId: a.switchId, from: a.previousAgent, phase, since: this.d.clock.monotonic() };
    this.check();
  }

  private deadLettered(e: RuntimeEvents['message.dead-lettered']): void {
    if (!this.d.leading() || !this.d.deviceSet.has(e.deviceId)) return;
    this.heard.set(e.deviceId, (this.heard.get(e.deviceId) ?? 0) + 1);
    this.publish(this.book.raise(deadLetterAlarm(e.deviceId, e.seq, e.reason)));
  }

  /** A new leader raises the alarms of the dead letters still open in the store (the last leader's cleared with its term). */
  private async raiseStoredDeadLetters(term: number): Promise<void> {
    const rows = await this.ask(() => this.d.store.listDeadLetters({ open: true, limit: OPEN_DEAD_LETTERS_READ }), 'which devices have open dead letters; their alarms are raised by the next dead letter or leader term');
    if (!rows || term !== this.term || !this.d.leading()) return;
    // newest first: the oldest open dead letter read of each device names its alarm
    for (const r of [...rows].reverse()) if (this.d.deviceSet.has(r.deviceId)) this.publish(this.book.raise(deadLetterAlarm(r.deviceId, r.seq, r.reason)));
  }

  /** An operator action on `target` (a device, or `dead-letter:<id>`, which may be any device's): its dead-letter alarms ask the store again. */
  private async recheckDeadLetters(target: string): Promise<void> {
    const open = this.book.ofKind('dead-letter').map((a) => a.subject!);
    await Promise.all(open.filter((deviceId) => target.startsWith('dead-letter:') || deviceId === target).map((deviceId) => this.recheck(deviceId)));
  }

  private async recheck(deviceId: string): Promise<void> {
    const term = this.term;
    const heard = this.heard.get(deviceId) ?? 0;
    const rows = await this.ask(() => this.d.store.listDeadLetters({ deviceId, open: true, limit: 1 }), `whether device ${deviceId} still has an open dead letter; its alarm stays open until the next action on it`);
    if (!rows || term !== this.term || heard !== (this.heard.get(deviceId) ?? 0)) return;
    if (!rows.some((r) => r.deviceId === deviceId)) this.publish(this.book.clear(`dead-letter:${deviceId}`));
  }

  private async ask<T>(read: () => Promise<T>, what: string): Promise<T | null> {
    try {
      return await read();
    } catch (err) {
      this.d.log.warn({ err: (err as Error).message }, `alarms: could not ask the store ${what}`);
      return null;
    }
  }

  /** Each change: its event, its log line and the metrics. */
  private publish(changes: AlarmChange[]): void {
    const { log, metrics, emit } = this.d;
    for (const c of changes) {
      const { id, kind, subject, text } = c.alarm;
      if (c.type === 'raised') log.error({ alarm: id, kind, subject }, `alarm raised: ${text}`);
      else log.info({ alarm: id, kind, subject, openMs: c.clearedAt - c.alarm.since }, `alarm cleared: ${text}`);
      metrics.onAlarm(kind, c.type === 'raised', this.book.ofKind(kind).length);
      if (c.type === 'raised') emit('alarm.raised', { alarm: c.alarm });
      else emit('alarm.cleared', { alarm: c.alarm, clearedAt: c.clearedAt });
    }
  }
}
