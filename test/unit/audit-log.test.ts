// The audit log (src/runtime/audit-log.ts) over the in-memory store: what it stores, emits and logs,
// and what it says when the store refuses.
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { AuditLog } from '../../src/runtime/audit-log.ts';
import { RuntimeEventEmitter } from '../../src/runtime/events.ts';
import type { RuntimeEvents, RuntimeStatus } from '../../src/api.ts';
import type { AuditStore } from '../../src/ports.ts';
import { captureLogs } from '../support/log-capture.ts';

function auditLog(o: { store?: AuditStore; state?: RuntimeStatus['state'] } = {}) {
  const store = o.store ?? createMemoryStore();
  const events = new RuntimeEventEmitter();
  const done: Array<RuntimeEvents['action.done']> = [];
  events.on('action.done', (e) => void done.push(e));
  const logs = captureLogs();
  let now = 1_000;
  const log = new AuditLog({ store, clock: { now: () => now }, emit: events.emit, log: logs.logger, state: () => o.state ?? 'running' });
  return { log, store, done, logs, tick: (ms: number) => void (now += ms) };
}

const pause = { action: 'pause' as const, target: 'fw1', by: 'cli:alice', outcome: 'done' as const, detail: 'maintenance' };

describe('AuditLog', () => {
  it('stores each entry stamped with the wall clock, emits action.done with it and logs it at info', async () => {
    const a = auditLog();
    const first = await a.log.record(pause);
    a.tick(500);
    const second = await a.log.record({ ...pause, action: 'resume', outcome: 'already', detail: '' });
    expect(first).toEqual({ id: first.id, at: 1_000, ...pause });
    expect(second).toMatchObject({ at: 1_500, action: 'resume', outcome: 'already' });
    expect(second.id).toBeGreaterThan(first.id);
    expect(a.done).toEqual([{ entry: first }, { entry: second }]);
    expect(await a.store.listAudit()).toEqual([second, first]);
    const info = a.logs.records().filter((r) => r.level === 30 && r.audit);
    expect(info.map((r) => r.audit)).toEqual([first, second]);
    expect(info[0]!.msg).toMatch(/pause of fw1 by cli:alice: done/);
  });

  it('lists the newest first, by target and limit', async () => {
    const a = auditLog();
    await a.log.record(pause);
    await a.log.record({ ...pause, target: 'fw2' });
    await a.log.record({ ...pause, action: 'resume' });
    expect((await a.log.list()).map((e) => `${e.action}:${e.target}`)).toEqual(['resume:fw1', 'pause:fw2', 'pause:fw1']);
    expect((await a.log.list({ target: 'fw1', limit: 1 })).map((e) => e.action)).toEqual(['resume']);
  });

  it('a store that refuses: database-unavailable saying the action stands and the audit misses it; logged at error, nothing emitted', async () => {
    const store = createMemoryStore();
    const a = auditLog({ store: { ...store, recordAudit: () => Promise.reject(new Error('connection refused')) } });
    const err = await a.log.record(pause).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'database-unavailable', details: { action: 'pause', target: 'fw1', by: 'cli:alice', outcome: 'done' } });
    expect((err as Error).message).toMatch(/audit row for pause of fw1 by cli:alice was not stored \(connection refused\): the action was carried out, but the audit table does not show it/);
    await expect(a.log.record({ ...pause, outcome: 'refused' })).rejects.toThrow(/the action was refused and changed nothing/);
    expect(a.done).toEqual([]);
    expect(a.logs.records().filter((r) => r.level === 50).map((r) => r.err)).toEqual(['connection refused', 'connection refused']);
  });

  it('reads the table only while the runtime runs', async () => {
    await expect(auditLog({ state: 'created' }).log.list()).rejects.toMatchObject({ code: 'runtime-not-started' });
    await expect(auditLog({ state: 'stopped' }).log.list()).rejects.toMatchObject({ code: 'runtime-stopped' });
  });
});
