// The event journal: entries numbered <term>-<n> as they happen, read back after an id within the
// window, refused (with the reason and the newest id) for another term, a dropped id or no id of
// it; live subscribers get each entry once; on a runtime, what receipts, dead letters, switches and
// alarms record.
import { describe, expect, it } from 'vitest';
import type { Alarm } from '../../src/api.ts';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import { silentLogger } from '../../src/logger.ts';
import { EventJournal } from '../../src/runtime/event-journal.ts';
import { RuntimeEventEmitter } from '../../src/runtime/events.ts';
import { operatorRuntime } from '../support/operator-runtime.ts';

function rig(capacity = 4) {
  const events = new RuntimeEventEmitter();
  let term: number | null = 7;
  let now = 1000;
  const journal = new EventJournal({ events, clock: { now: () => now++ }, log: silentLogger(), currentTerm: () => (term === null ? null : { holder: 'r1', epoch: term }), capacity });
  const applied = (deviceId: string, from: number, to = from) => events.emit('receipts.applied', { agentId: 'a1', ranges: [{ deviceId, from, to }] });
  return { events, journal, applied, setTerm: (t: number | null) => (term = t) };
}

const ids = (r: ReturnType<EventJournal['since']>) => (r.ok ? r.entries.map((e) => e.id) : r);

describe('EventJournal (the part alone)', () => {
  it('numbers entries <term>-<n> and tells what followed an id, oldest first', () => {
    const { journal, applied, events } = rig();
    expect(journal.newest()).toBeNull();
    applied('fw1', 1, 3);
    events.emit('receipts.applied', { agentId: 'a1', ranges: [{ deviceId: 'fw1', from: 5, to: 5 }, { deviceId: 'fw2', from: 1, to: 2 }] });
    events.emit('message.dead-lettered', { deviceId: 'fw1', seq: 4, reason: 'device rejected the message (422)', agentId: 'a1' });
    expect(journal.newest()).toBe('7-4');
    const all = journal.since('7-0');
    expect(all).toEqual({
      ok: true,
      entries: [
        { id: '7-1', at: 1000, type: 'applied', deviceId: 'fw1', from: 1, to: 3 },
        { id: '7-2', at: 1001, type: 'applied', deviceId: 'fw1', from: 5, to: 5 },
        { id: '7-3', at: 1002, type: 'applied', deviceId: 'fw2', from: 1, to: 2 },
        { id: '7-4', at: 1003, type: 'dead-lettered', deviceId: 'fw1', seq: 4, reason: 'device rejected the message (422)' },
      ],
    });
    expect(ids(journal.since('7-2'))).toEqual(['7-3', '7-4']);
    expect(ids(journal.since('7-4'))).toEqual([]);
  });

  it('keeps the last `capacity` entries: an id whose successor was dropped is too old', () => {
    const { journal, applied } = rig(3);
    for (let s = 1; s <= 5; s++) applied('fw1', s);
    expect(ids(journal.since('7-2'))).toEqual(['7-3', '7-4', '7-5']);
    const old = journal.since('7-1');
    expect(old).toMatchObject({ ok: false, reason: 'too-old', newest: '7-5' });
    expect(!old.ok && old.message).toBe('events after 7-1 are no longer kept (the journal keeps the last 3): read the state afresh (the fate of each message waited for), then follow on from 7-5');
  });

  it('ids do not survive a change of term: an id of another term is refused, a new term numbers from 1; an event after the term ended belongs to it', () => {
    const { journal, applied, events, setTerm } = rig();
    applied('fw1', 1);
    setTerm(null);
    const alarm: Alarm = { id: 'device-blocked:fw1', kind: 'device-blocked', subject: 'fw1', text: 'blocked', since: 5 };
    events.emit('alarm.cleared', { alarm, clearedAt: 9 });
    expect(journal.newest()).toBe('7-2');
    setTerm(9);
    applied('fw1', 2);
    expect(journal.newest()).toBe('9-1');
    expect(journal.since('7-2')).toMatchObject({ ok: false, reason: 'leader-changed', newest: '9-1' });
    expect(ids(journal.since('9-0'))).toEqual(['9-1']);
    expect(journal.since('9-2')).toMatchObject({ ok: false, reason: 'unknown-id' });
    expect(journal.since('last')).toMatchObject({ ok: false, reason: 'unknown-id' });
  });

  it('a runtime that never led records nothing', () => {
    const { journal, applied, setTerm } = rig();
    setTerm(null);
    applied('fw1', 1);
    expect(journal.newest()).toBeNull();
    expect(journal.since('1-0')).toMatchObject({ ok: false, reason: 'leader-changed', newest: null });
  });

  it('subscribers get each entry as it is recorded; one that throws does not keep it from the others; stopped, no more', () => {
    const { journal, applied } = rig();
    const got: string[] = [];
    journal.subscribe(() => {
      throw new Error('a closed socket');
    });
    const stop = journal.subscribe((e) => got.push(e.id));
    applied('fw1', 1);
    stop();
    applied('fw1', 2);
    expect(got).toEqual(['7-1']);
  });

  it('follow(): what followed the id, then each new entry, as { id, type, data: the entry }; null: only new ones; an id it cannot follow is refused before anything is heard', () => {
    const { journal, applied } = rig(3);
    applied('fw1', 1);
    applied('fw1', 2);
    const got: string[] = [];
    const stop = journal.follow('7-1', (e) => got.push(`${e.id} ${e.type} ${e.data.type === 'applied' ? e.data.from : ''}`));
    const fresh: string[] = [];
    journal.follow(null, (e) => fresh.push(e.id));
    applied('fw1', 3);
    stop();
    applied('fw1', 4);
    expect(got).toEqual(['7-2 applied 2', '7-3 applied 3']);
    expect(fresh).toEqual(['7-3', '7-4']);
    const heard: string[] = [];
    let refused: unknown = null;
    try {
      journal.follow('7-0', (e) => heard.push(e.id));
    } catch (err) {
      refused = err;
    }
    expect(refused).toMatchObject({ code: 'invalid-request', details: { field: 'Last-Event-ID', reason: 'too-old', newest: '7-4' } });
    expect(heard).toEqual([]);
  });

  it('a switch: started with its reason, each phase, completed', () => {
    const { journal, events } = rig(10);
    const a: Assignment = { agentId: 'a2', topic: 't.agent.a2', epoch: 3, lock: 1, phase: 'switching', switchId: 's1', previousAgent: 'a1' };
    events.emit('switch.started', { assignment: a, reason: 'agent a1 killed' });
    for (const phase of ['switching', 'draining', 'replaying'] as const) events.emit('switch.phase', { assignment: { ...a, phase }, phase });
    events.emit('switch.completed', { assignment: { ...a, phase: 'normal', lock: 0 } });
    const r = journal.since('7-0');
    expect(r.ok && r.entries.map((e) => (e.type === 'switch' ? [e.step, e.from, e.to, e.epoch, e.reason ?? null] : null))).toEqual([
      ['started', 'a1', 'a2', 3, 'agent a1 killed'],
      ['switching', 'a1', 'a2', 3, null],
      ['draining', 'a1', 'a2', 3, null],
      ['replaying', 'a1', 'a2', 3, null],
      ['completed', 'a1', 'a2', 3, null],
    ]);
  });
});

describe('runtime.journal', () => {
  it('records what receipts applied, a dead letter and the alarm it raises, numbered in the leader term', async () => {
    const c = await operatorRuntime();
    // nothing happened yet that the journal records (the first agent is no switch)
    expect(c.runtime.journal.newest()).toBeNull();
    const [m1, m2] = [await c.dispatch('fw1', '/p/1'), await c.dispatch('fw1', '/p/2')];
    await c.applied('fw1', m1.seq);
    await c.refused(c.sent[1]!);
    await c.world.run(() => false, c.world.now + 1500);
    // leader term 1 (a fresh database)
    const r = c.runtime.journal.since('1-0');
    const entries = r.ok ? r.entries : [];
    expect(entries.map((e) => e.id)).toEqual(['1-1', '1-2', '1-3']);
    expect(entries.map(({ id: _id, at: _at, ...e }) => (e.type === 'alarm' ? { type: e.type, state: e.state, id: e.alarm.id } : e))).toEqual([
      { type: 'applied', deviceId: 'fw1', from: m1.seq, to: m1.seq },
      { type: 'dead-lettered', deviceId: 'fw1', seq: m2.seq, reason: 'device rejected the message (422)' },
      { type: 'alarm', state: 'raised', id: 'dead-letter:fw1' },
    ]);
  });
});
