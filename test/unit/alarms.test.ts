// Alarms on a hand-driven clock: the book raises each alarm once and clears it once (ids stable,
// a changed condition clears and raises again); the rules judge blocked lines, lagging devices,
// slow switch phases and the absence of a healthy agent; the watch wires them to the runtime's
// events and a periodic check without flapping, asks the store before clearing a dead letter's
// alarm (and ignores an answer a newer dead letter overtook), clears everything when it stops
// leading, and publishes each change as an event, a log line (error when raised) and the metrics.
import { describe, expect, it } from 'vitest';
import type { Alarm, AuditEntry, RuntimeEvents } from '../../src/api.ts';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { AgentView } from '../../src/api.ts';
import type { LaneReport } from '../../src/side-channel.ts';
import { AlarmWatch, type OpenDeadLetters } from '../../src/runtime/alarm-watch.ts';
import { AlarmBook, NO_HEALTHY_AGENT, wantedAlarms, type AlarmFacts } from '../../src/runtime/alarms.ts';
import { RuntimeEventEmitter } from '../../src/runtime/events.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { captureLogs } from '../support/log-capture.ts';

/** A clock moved by hand; wall time is monotonic time plus a fixed origin. */
class HandClock {
  t = 0;
  now = () => 1_800_000_000_000 + this.t;
  monotonic = () => this.t;
  setTimeout = () => ({ cancel() {} });
}

const BLOCKED: LaneReport = { deviceId: 'fw1', state: 'blocked', seq: 2, status: 422, response: 'vlan 4095 is reserved', reason: 'device rejected the message (422)', since: 0 };
const THRESHOLDS = { lagMs: 60_000, switchPhaseMs: 30_000, noAgentMs: 1000 };
const facts = (f: Partial<AlarmFacts> = {}): AlarmFacts => ({ leading: true, now: 100_000, lanes: [], oldest: [], noHealthyAgentSince: null, phase: null, ...f });

describe('the alarm book', () => {
  it('raises once, clears once; ids stay; since is the clock at the raise', () => {
    const clock = new HandClock();
    const book = new AlarmBook(clock);
    const w = { id: 'no-healthy-agent', kind: 'no-healthy-agent' as const, subject: null, text: 'none' };
    expect(book.raise(w)).toEqual([{ type: 'raised', alarm: { ...w, since: clock.now() } }]);
    clock.t += 5000;
    expect(book.raise(w)).toEqual([]);
    expect(book.list()).toEqual([{ ...w, since: clock.now() - 5000 }]);
    expect(book.clear('no-healthy-agent')).toEqual([{ type: 'cleared', alarm: { ...w, since: clock.now() - 5000 }, clearedAt: clock.now() }]);
    expect(book.clear('no-healthy-agent')).toEqual([]);
    expect(book.list()).toEqual([]);
  });

  it('reconcile: the open alarms of a kind become the wanted ones; another text is another condition; other kinds are left alone', () => {
    const book = new AlarmBook(new HandClock());
    const a = { id: 'device-blocked:fw1', kind: 'device-blocked' as const, subject: 'fw1', text: 'at seq 2' };
    const b = { id: 'device-blocked:fw2', kind: 'device-blocked' as const, subject: 'fw2', text: 'at seq 9' };
    book.raise(NO_HEALTHY_AGENT);
    expect(book.reconcile('device-blocked', [a, b, NO_HEALTHY_AGENT]).map((c) => `${c.type} ${c.alarm.id}`)).toEqual(['raised device-blocked:fw1', 'raised device-blocked:fw2']);
    expect(book.reconcile('device-blocked', [a, b])).toEqual([]);
    expect(book.reconcile('device-blocked', [{ ...a, text: 'at seq 3' }]).map((c) => `${c.type} ${c.alarm.id} ${c.alarm.text}`)).toEqual([
      'cleared device-blocked:fw1 at seq 2',
      'cleared device-blocked:fw2 at seq 9',
      'raised device-blocked:fw1 at seq 3',
    ]);
    expect(book.isOpen('no-healthy-agent')).toBe(true);
    expect(book.clearAll().map((c) => c.alarm.id).sort()).toEqual(['device-blocked:fw1', 'no-healthy-agent']);
  });
});

describe('the alarm rules', () => {
  it('a blocked line names the seq, the device\'s answer and what frees it; a retrying or paused one is no alarm', () => {
    const [w, ...rest] = wantedAlarms(facts({ lanes: [BLOCKED, { deviceId: 'fw2', state: 'retrying', seq: 1, attempt: 3, reason: 'ECONNREFUSED', since: 0 }] }), THRESHOLDS);
    expect(rest).toEqual([]);
    expect(w).toMatchObject({ id: 'device-blocked:fw1', kind: 'device-blocked', subject: 'fw1' });
    expect(w!.text).toBe('device fw1: its line is blocked at seq 2, which the device refused (status 422, answer "vlan 4095 is reserved": device rejected the message (422)); nothing after it is delivered until an operator unblocks it (retry once the device is fixed, or skip)');
  });

  it('lagging past the threshold only (not at it), and not while paused', () => {
    const oldest = [['fw1', 100_000 - 60_000], ['fw2', 100_000 - 60_001], ['fw3', 100_000 - 90_000]] as const;
    const paused: LaneReport = { deviceId: 'fw3', state: 'paused', seq: 4, held: 2, reason: 'maintenance', since: 0 };
    expect(wantedAlarms(facts({ oldest, lanes: [paused] }), THRESHOLDS).map((w) => w.id)).toEqual(['device-lagging:fw2']);
  });

  it('a switch phase past its threshold; no healthy agent for a heartbeat timeout; nothing at all from a runtime that does not lead', () => {
    const phase = { switchId: 'sw-3', from: 'a1', phase: 'draining', since: 100_000 - 30_001 };
    expect(wantedAlarms(facts({ noHealthyAgentSince: 100_000 - 999 }), THRESHOLDS)).toEqual([]);
    const wanted = wantedAlarms(facts({ phase, noHealthyAgentSince: 100_000 - 1000 }), THRESHOLDS);
    expect(wanted.map((w) => w.id)).toEqual(['switch-slow', 'no-healthy-agent']);
    expect(wanted[0]!.text).toBe('switch sw-3 away from agent a1 has been in phase draining for more than 30000 ms (alarmSwitchPhaseMs); messages are parked until it completes');
    expect(wantedAlarms(facts({ phase: { ...phase, since: 100_000 - 30_000 } }), THRESHOLDS)).toEqual([]);
    expect(wantedAlarms(facts({ leading: false, phase, noHealthyAgentSince: 0, lanes: [BLOCKED], oldest: [['fw1', 0]] }), THRESHOLDS)).toEqual([]);
  });
});

/** A watch over fakes: the test sets the agents, lanes, ledger and store answers, and moves the clock. */
function watched(o: { lagMs?: number; switchPhaseMs?: number; store?: OpenDeadLetters } = {}) {
  const clock = new HandClock();
  const events = new RuntimeEventEmitter();
  const logs = captureLogs();
  const metrics = new Metrics();
  const world = {
    leading: true,
    healthy: [{ agentId: 'a1', state: 'active' }] as AgentView[],
    lanes: [] as LaneReport[],
    oldest: new Map<string, number>(),
    /** open dead letters in the store */
    open: [] as Array<{ deviceId: string; seq: number; reason: string }>,
    /** when set, the store answers only once this resolves */
    hold: null as Promise<void> | null,
    asked: 0,
  };
  const store: OpenDeadLetters = {
    listDeadLetters: async (f) => {
      world.asked++;
      const answer = world.open.filter((d) => f.deviceId === undefined || d.deviceId === f.deviceId).slice(0, f.limit);
      if (world.hold) await world.hold;
      return answer;
    },
  };
  const watch = new AlarmWatch({
    cfg: { devices: ['fw1', 'fw2'], alarmLagMs: o.lagMs ?? 60_000, alarmSwitchPhaseMs: o.switchPhaseMs ?? 30_000, heartbeatTimeout: 1000 },
    clock,
    log: logs.logger,
    deviceSet: new Set(['fw1', 'fw2']),
    events,
    emit: events.emit,
    metrics,
    leading: () => world.leading,
    registry: { healthy: () => world.healthy, lanes: (agentId) => (agentId === 'a1' ? world.lanes : []) },
    activeAgent: () => 'a1',
    ledger: { oldestOutstanding: (d) => world.oldest.get(d) ?? null },
    store: o.store ?? store,
  });
  const seen: string[] = [];
  events.on('alarm.raised', ({ alarm }) => seen.push(`raised ${alarm.id}`));
  events.on('alarm.cleared', ({ alarm }) => seen.push(`cleared ${alarm.id}`));
  /** `n` periodic checks, `ms` apart */
  const tick = (n: number, ms = watch.every) => {
    for (let i = 0; i < n; i++) {
      clock.t += ms;
      watch.check();
    }
  };
  const settle = () => new Promise((r) => setImmediate(r));
  return { clock, events, logs, metrics, world, watch, seen, tick, settle };
}

const assignment = (phase: Assignment['phase'], switchId = 'sw-1'): Assignment => ({ agentId: 'a2', topic: 'q', epoch: 2, lock: 1, phase, switchId, previousAgent: 'a1' });
const done = (target: string): RuntimeEvents['action.done'] => ({ entry: { id: 1, at: 0, action: 'dead-letter-drop', target, by: 'host', outcome: 'done', detail: '' } satisfies AuditEntry });

describe('the alarm watch', () => {
  it('a lagging device: raised once when its oldest unapplied message passes the threshold, cleared once when it is applied; no flapping on the ticks between', () => {
    const c = watched({ lagMs: 5000 });
    expect(c.watch.every).toBe(1000);
    c.world.oldest.set('fw1', c.clock.t);
    c.tick(5);
    expect(c.seen).toEqual([]); // exactly at the threshold: not past it
    c.tick(20);
    expect(c.seen).toEqual(['raised device-lagging:fw1']);
    expect(c.watch.list()).toMatchObject([{ id: 'device-lagging:fw1', kind: 'device-lagging', subject: 'fw1', since: c.clock.now() - 19_000 }]);
    c.world.oldest.set('fw1', c.clock.t - 1000); // the oldest was applied: the next one is young
    c.tick(3);
    expect(c.seen).toEqual(['raised device-lagging:fw1', 'cleared device-lagging:fw1']);
    expect(c.watch.list()).toEqual([]);
  });

  it('a switch that stays in one phase: raised once past the threshold; cleared when the phase changes (its clock starts again) and when it completes', () => {
    const c = watched({ switchPhaseMs: 3000 });
    c.events.emit('switch.started', { assignment: assignment('switching'), reason: 'agent a1 killed' });
    c.tick(2);
    c.events.emit('switch.phase', { assignment: assignment('switching'), phase: 'switching' }); // the same phase told again keeps its clock
    c.tick(10);
    expect(c.seen).toEqual(['raised switch-slow']);
    expect(c.watch.list()[0]).toMatchObject({ subject: 'sw-1', text: expect.stringContaining('in phase switching for more than 3000 ms') });
    c.events.emit('switch.phase', { assignment: assignment('draining'), phase: 'draining' });
    expect(c.seen).toEqual(['raised switch-slow', 'cleared switch-slow']);
    c.tick(4);
    expect(c.seen.at(-1)).toBe('raised switch-slow');
    c.events.emit('switch.completed', { assignment: assignment('normal') });
    c.tick(10);
    expect(c.seen).toEqual(['raised switch-slow', 'cleared switch-slow', 'raised switch-slow', 'cleared switch-slow']);
  });

  it('no healthy agent: not while agents may not have been heard yet; raised at the death of the last one, cleared when one is alive; a blocked line from device.line at once', () => {
    const c = watched();
    c.world.healthy = []; // the only agent went suspect
    c.tick(1);
    c.clock.t += 999;
    c.watch.check();
    expect(c.seen).toEqual([]);
    c.clock.t += 1;
    c.events.emit('agent.dead', { type: 'agent.dead', agentId: 'a1', reason: 'killed' } as RuntimeEvents['agent.dead']);
    expect(c.seen).toEqual(['raised no-healthy-agent']);
    c.tick(5);
    c.world.healthy = [{ agentId: 'a2', topic: 'q', host: 'h', state: 'idle', lastHeartbeat: 0 }];
    c.events.emit('agent.registered', { agentId: 'a2' });
    c.world.lanes = [BLOCKED];
    c.events.emit('device.line', { deviceId: 'fw1', agentId: 'a1', line: BLOCKED });
    c.tick(5);
    expect(c.seen).toEqual(['raised no-healthy-agent', 'cleared no-healthy-agent', 'raised device-blocked:fw1']);
    c.world.lanes = [];
    c.events.emit('device.line', { deviceId: 'fw1', agentId: 'a1', line: null });
    expect(c.seen.at(-1)).toBe('cleared device-blocked:fw1');
  });

  it('a dead letter: raised once per device; cleared only when the store has none open for it after an operator action', async () => {
    const c = watched();
    const dl = { deviceId: 'fw1', seq: 3, reason: 'device rejected the message (400)', agentId: 'a1' };
    c.world.open = [dl];
    c.events.emit('message.dead-lettered', dl);
    c.events.emit('message.dead-lettered', { ...dl, seq: 4 });
    c.events.emit('message.dead-lettered', { ...dl, deviceId: 'unknown-device' });
    expect(c.seen).toEqual(['raised dead-letter:fw1']);
    c.tick(5);
    c.events.emit('action.done', done('fw2')); // another device: nothing asked
    await c.settle();
    expect(c.world.asked).toBe(0);
    c.events.emit('action.done', done('dead-letter:7')); // still open in the store
    await c.settle();
    expect(c.world.asked).toBe(1);
    expect(c.seen).toEqual(['raised dead-letter:fw1']);
    c.world.open = [];
    c.events.emit('action.done', done('fw1'));
    await c.settle();
    expect(c.seen).toEqual(['raised dead-letter:fw1', 'cleared dead-letter:fw1']);
  });

  it('over the in-memory store: a new leader raises the open ones; a dead letter resolved by an action clears its device\'s alarm, not another\'s', async () => {
    const store = createMemoryStore({ now: () => 0 });
    const entry = { seq: 3, epoch: 1, agentId: 'a1', reason: 'device rejected the message (400)', status: 400, response: 'no', payload: '{}' };
    await store.deadLetter({ ...entry, deviceId: 'fw1' });
    await store.deadLetter({ ...entry, deviceId: 'fw2' });
    const c = watched({ store });
    c.events.emit('leader.won', { runtimeId: 'r1' });
    await c.settle();
    expect(c.seen.sort()).toEqual(['raised dead-letter:fw1', 'raised dead-letter:fw2']);
    const [fw1] = await store.listDeadLetters({ deviceId: 'fw1' });
    await store.resolveDeadLetter(fw1!.id, { kind: 'dropped', by: 'host', at: 0, detail: 'obsolete' });
    c.events.emit('action.done', done(`dead-letter:${fw1!.id}`));
    await c.settle();
    expect(c.seen.slice(2)).toEqual(['cleared dead-letter:fw1']);
    expect(c.watch.list().map((a) => a.id)).toEqual(['dead-letter:fw2']);
  });

  it('a store answer that a newer dead letter overtook clears nothing', async () => {
    const c = watched();
    const dl = { deviceId: 'fw1', seq: 3, reason: 'rejected', agentId: 'a1' };
    c.events.emit('message.dead-lettered', dl);
    let answer!: () => void;
    c.world.hold = new Promise((r) => (answer = r));
    c.events.emit('action.done', done('fw1')); // the store is read: none open...
    await c.settle();
    c.events.emit('message.dead-lettered', { ...dl, seq: 5 }); // ...and then a new one comes
    answer();
    await c.settle();
    expect(c.seen).toEqual(['raised dead-letter:fw1']);
  });

  it('a new leader raises the alarms of the dead letters open in the store; one that stops leading clears every alarm, and raises none while it follows', async () => {
    const c = watched();
    c.world.open = [{ deviceId: 'fw2', seq: 9, reason: 'gone' }, { deviceId: 'elsewhere', seq: 1, reason: 'x' }];
    c.events.emit('leader.won', { runtimeId: 'r1' });
    await c.settle();
    expect(c.seen).toEqual(['raised dead-letter:fw2']);
    c.world.healthy = [];
    c.tick(2);
    c.world.leading = false;
    c.events.emit('leader.lost', { runtimeId: 'r1', holder: 'r2' });
    expect(c.seen.slice(2).sort()).toEqual(['cleared dead-letter:fw2', 'cleared no-healthy-agent']);
    c.events.emit('message.dead-lettered', { deviceId: 'fw1', seq: 3, reason: 'x', agentId: 'a1' });
    c.world.lanes = [BLOCKED];
    c.tick(5);
    expect(c.watch.list()).toEqual([]);
    expect(c.seen).toHaveLength(4);
  });

  it('each change is an error log line when raised, an info line when cleared, and the metrics', async () => {
    const c = watched();
    const zero = await c.metrics.text();
    expect(zero).toContain('baton_alarms_open{kind="dead-letter"} 0');
    expect(zero).toContain('baton_alarms_raised_total{kind="switch-slow"} 0');
    c.world.healthy = [];
    c.tick(2);
    expect(await c.metrics.text()).toContain('baton_alarms_open{kind="no-healthy-agent"} 1');
    c.world.healthy = [{ agentId: 'a1', topic: 'q', host: 'h', state: 'active', lastHeartbeat: 0 }];
    c.tick(1);
    const text = await c.metrics.text();
    expect(text).toContain('baton_alarms_open{kind="no-healthy-agent"} 0');
    expect(text).toContain('baton_alarms_raised_total{kind="no-healthy-agent"} 1');
    const lines = c.logs.records().filter((r) => String(r.msg).startsWith('alarm'));
    expect(lines.map((r) => [r.level, r.alarm])).toEqual([[50, 'no-healthy-agent'], [30, 'no-healthy-agent']]);
    expect(lines[0]!.msg).toBe(`alarm raised: ${NO_HEALTHY_AGENT.text}`);
    expect(lines[1]).toMatchObject({ openMs: 1000 });
  });

  it('stop() clears what is open, with the events', () => {
    const c = watched();
    c.world.lanes = [BLOCKED];
    c.tick(1);
    const cleared: Alarm[] = [];
    c.events.on('alarm.cleared', ({ alarm }) => cleared.push(alarm));
    c.watch.stop();
    expect(cleared.map((a) => a.id)).toEqual(['device-blocked:fw1']);
    expect(c.watch.list()).toEqual([]);
  });
});
