// The Store contract's parts for the roles operator actions use (src/ports.ts): DeadLetterStore,
// LineStore, AuditStore. store-contract.ts runs them with the others, on every adapter.
import { beforeEach, describe, expect, it } from 'vitest';
import type { AuditEntry, AuditStore, DeadLetterStore, LeadershipStore, LineStore, StoredLineOrder } from '../../src/ports.ts';

/** runtime r1's term: leader-only writes are made in one */
const leadOf = async (store: LeadershipStore) => ({ holder: 'r1', epoch: (await store.acquireLeadership('r1', 60_000)).epoch });

/** the store of the test running now, seen as the roles `S` a role's part uses */
type Current<S> = () => S;

export function deadLetterContract(current: Current<DeadLetterStore>) {
  describe('DeadLetterStore', () => {
    let store: DeadLetterStore;
    beforeEach(() => void (store = current()));
    const e = { deviceId: 'd1', seq: 3, epoch: 1, agentId: 'a1', reason: '422', status: 422, response: 'no parent', payload: '{"seq":3}' };
    const malformed = { ...e, deviceId: '?', seq: 0, reason: 'malformed', status: null, response: null, payload: '{' };
    const settled = { kind: 'skipped' as const, by: 'ops', at: Date.parse('2026-01-02T03:04:05.678Z'), detail: 'not needed' };

    it('keeps one dead letter per message, and every malformed one; each with an id, its time and no resolution', async () => {
      const before = Date.now();
      await store.deadLetter(e);
      await store.deadLetter(malformed);
      await store.deadLetter({ ...malformed, reason: 'malformed too' });
      const all = await store.listDeadLetters();
      expect(all.map((d) => d.reason)).toEqual(['malformed too', 'malformed', '422']);
      expect(all[2]).toEqual({ ...e, id: all[2]!.id, at: all[2]!.at, resolution: null });
      expect(all[2]!.at).toBeGreaterThanOrEqual(before - 1000);
      expect(all[0]!.id).toBeGreaterThan(all[1]!.id);
      expect(all[1]!.id).toBeGreaterThan(all[2]!.id);
      // the newest malformed one is the one found for seq 0
      expect(await store.findDeadLetter('?', 0)).toMatchObject({ id: all[0]!.id, reason: 'malformed too' });
      expect(await store.findDeadLetter('d1', 3)).toEqual(all[2]);
      expect(await store.findDeadLetter('d1', 4)).toBeNull();
      expect(await store.getDeadLetter(all[1]!.id)).toEqual(all[1]);
      expect(await store.getDeadLetter(all[0]!.id + 100)).toBeNull();
    });

    it('a second dead letter of the same seq replaces the first (reason, answer, epoch, agent), keeps its id and opens it again', async () => {
      await store.deadLetter(e);
      const [first] = await store.listDeadLetters();
      expect(await store.resolveDeadLetter(first!.id, { kind: 'retried', by: 'ops', at: settled.at, detail: 'try again' })).toBe(true);
      await store.deadLetter({ ...e, epoch: 2, agentId: 'a2', reason: '409', status: 409, response: 'conflict' });
      const all = await store.listDeadLetters();
      expect(all).toHaveLength(1);
      expect(all[0]).toMatchObject({ id: first!.id, deviceId: 'd1', seq: 3, epoch: 2, agentId: 'a2', reason: '409', status: 409, response: 'conflict', payload: e.payload, resolution: null });
    });

    it('settles a dead letter and opens it again; false for an unknown id', async () => {
      await store.deadLetter(e);
      const [d] = await store.listDeadLetters();
      expect(await store.resolveDeadLetter(d!.id, settled)).toBe(true);
      expect((await store.getDeadLetter(d!.id))!.resolution).toEqual(settled);
      const resent = { kind: 'resent' as const, by: 'ops2', at: settled.at + 1, detail: 'sent again as seq 9', seq: 9 };
      expect(await store.resolveDeadLetter(d!.id, resent)).toBe(true);
      expect((await store.getDeadLetter(d!.id))!.resolution).toEqual(resent);
      expect(await store.resolveDeadLetter(d!.id, null)).toBe(true);
      expect((await store.getDeadLetter(d!.id))!.resolution).toBeNull();
      expect(await store.resolveDeadLetter(d!.id + 100, settled)).toBe(false);
      expect(await store.getDeadLetter(d!.id + 100)).toBeNull();
    });

    it('lists newest first, by device, by reason (a substring, any case), open ones only, up to a limit', async () => {
      await store.deadLetter(e);
      await store.deadLetter({ ...e, seq: 4, reason: 'Device REJECTED it (400)' });
      await store.deadLetter({ ...e, deviceId: 'd2', seq: 1, reason: 'rejected 100%_sure' });
      await store.deadLetter({ ...e, deviceId: 'd10', seq: 2 });
      const key = (ds: Array<{ deviceId: string; seq: number }>) => ds.map((d) => `${d.deviceId}:${d.seq}`);
      expect(key(await store.listDeadLetters())).toEqual(['d10:2', 'd2:1', 'd1:4', 'd1:3']);
      expect(key(await store.listDeadLetters({ deviceId: 'd1' }))).toEqual(['d1:4', 'd1:3']);
      expect(key(await store.listDeadLetters({ reason: 'rejected' }))).toEqual(['d2:1', 'd1:4']);
      // what the operator typed matches as written: % and _ are no wildcards
      expect(key(await store.listDeadLetters({ reason: '100%_S' }))).toEqual(['d2:1']);
      expect(key(await store.listDeadLetters({ reason: '1%0' }))).toEqual([]);
      expect(key(await store.listDeadLetters({ limit: 2 }))).toEqual(['d10:2', 'd2:1']);
      const [, d2] = await store.listDeadLetters();
      await store.resolveDeadLetter(d2!.id, settled);
      expect(key(await store.listDeadLetters({ open: true }))).toEqual(['d10:2', 'd1:4', 'd1:3']);
      expect(key(await store.listDeadLetters({ open: false }))).toEqual(['d10:2', 'd2:1', 'd1:4', 'd1:3']);
      expect(key(await store.listDeadLetters({ deviceId: 'd1', reason: 'REJECTED', open: true, limit: 5 }))).toEqual(['d1:4']);
    });

    it('lists at most 1000 by default', async () => {
      for (let seq = 1; seq <= 1001; seq++) await store.deadLetter({ ...e, seq });
      const all = await store.listDeadLetters();
      expect(all).toHaveLength(1000);
      expect(all[0]!.seq).toBe(1001);
    });
  });
}

export function lineContract(current: Current<LineStore & LeadershipStore>) {
  describe('LineStore', () => {
    let store: LineStore & LeadershipStore;
    beforeEach(() => void (store = current()));
    const at = Date.parse('2026-01-02T03:04:05.678Z');
    const blocked: StoredLineOrder = { deviceId: 'd2', order: { paused: false, blockedAt: 7, retry: { seq: 7, n: 3 }, releasedThrough: 5 }, by: 'agent a1', at, note: '422 no parent' };
    const paused: StoredLineOrder = { deviceId: 'd1', order: { paused: true, blockedAt: null, retry: null, releasedThrough: 0 }, by: 'ops', at: at + 1, note: 'maintenance window' };

    it('round-trips every field of an order, one per device, the last written standing', async () => {
      const t = await leadOf(store);
      expect(await store.lineOrders()).toEqual([]);
      await store.setLineOrder(blocked, t);
      await store.setLineOrder(paused, t);
      expect(await store.lineOrders()).toEqual([paused, blocked]);
      const released: StoredLineOrder = { ...blocked, order: { paused: true, blockedAt: null, retry: null, releasedThrough: 7 }, by: 'ops2', at: at + 2, note: '' };
      await store.setLineOrder(released, t);
      expect(await store.lineOrders()).toEqual([paused, released]);
    });

    it('writes an order only in the leader term: refused with not-leader outside it, nothing written', async () => {
      const t1 = await leadOf(store);
      await store.setLineOrder(paused, t1);
      await store.releaseLeadership('r1');
      await expect(store.setLineOrder(blocked, t1)).rejects.toMatchObject({ code: 'not-leader' });
      await expect(store.setLineOrder({ ...paused, order: { ...paused.order, paused: false } }, t1)).rejects.toMatchObject({ code: 'not-leader' });
      const t2 = { holder: 'r2', epoch: (await store.acquireLeadership('r2', 60_000)).epoch };
      await expect(store.setLineOrder(blocked, t1)).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.lineOrders()).toEqual([paused]);
      await store.setLineOrder(blocked, t2);
      expect(await store.lineOrders()).toEqual([paused, blocked]);
    });
  });
}

export function auditContract(current: Current<AuditStore>) {
  describe('AuditStore', () => {
    let store: AuditStore;
    beforeEach(() => void (store = current()));
    const at = Date.parse('2026-01-02T03:04:05.678Z');
    const entry = (target: string, i: number): Omit<AuditEntry, 'id'> => ({ at: at + i, action: 'pause', target, by: 'ops', outcome: 'done', detail: `step ${i}` });

    it('records entries with rising ids, every field kept', async () => {
      const a = await store.recordAudit(entry('d1', 0));
      const b = await store.recordAudit({ ...entry('dead-letter:12', 1), action: 'dead-letter-resend', outcome: 'refused', detail: '' });
      expect(a).toEqual({ id: a.id, ...entry('d1', 0) });
      expect(b.id).toBeGreaterThan(a.id);
      expect(await store.listAudit()).toEqual([b, a]);
    });

    it('lists the newest first, by target, up to a limit (100 by default)', async () => {
      const ids: number[] = [];
      for (let i = 0; i < 105; i++) ids.push((await store.recordAudit(entry(i % 2 ? 'd1' : 'agent-1', i))).id);
      const all = await store.listAudit();
      expect(all.map((x) => x.id)).toEqual(ids.slice(5).reverse());
      expect((await store.listAudit({ limit: 3 })).map((x) => x.detail)).toEqual(['step 104', 'step 103', 'step 102']);
      expect((await store.listAudit({ target: 'd1', limit: 2 })).map((x) => x.detail)).toEqual(['step 103', 'step 101']);
      expect(await store.listAudit({ target: 'd1', limit: 1000 })).toHaveLength(52);
      expect(await store.listAudit({ target: 'nobody' })).toEqual([]);
    });
  });
}
