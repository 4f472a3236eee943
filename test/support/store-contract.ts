// The Store port's contract, role by role (src/ports.ts): every adapter (PostgreSQL via MikroORM, in
// memory) must pass it. Each role's part takes the store as the roles it uses: its own, and the
// leadership it needs for a term (leader-only writes name one) or the reads it checks through.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type {
  AgentStore, AssignmentStore, DeliveryStore, LeadershipStore, ParkingStore, SeqStore, Store, StoreLifecycle, WireMessage,
} from '../../src/ports.ts';
import { auditContract, deadLetterContract, lineContract } from './store-contract-actions.ts';
import { idempotencyContract } from './store-contract-idempotency.ts';

const m = (deviceId: string, seq: number): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: { seq } });

/** runtime r1's term: leader-only writes are made in one */
const leadOf = async (store: LeadershipStore) => ({ holder: 'r1', epoch: (await store.acquireLeadership('r1', 60_000)).epoch });

/** the store of the test running now, seen as the roles `S` a role's part uses */
type Current<S> = () => S;

export function storeContract(name: string, open: () => Promise<{ store: Store; dispose(): Promise<void> }>) {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    let dispose: () => Promise<void>;
    beforeEach(async () => {
      ({ store, dispose } = await open());
      await store.migrate();
    });
    afterEach(async () => {
      await store.close();
      await dispose();
    });
    const current = () => store;

    lifecycleContract(current);
    leadershipContract(current);
    seqContract(current);
    assignmentContract(current);
    leaderOnlyWritesContract(current);
    parkingContract(current);
    deliveryContract(current);
    deadLetterContract(current);
    lineContract(current);
    auditContract(current);
    idempotencyContract(current);
    agentContract(current);
  });
}

function lifecycleContract(current: Current<StoreLifecycle>) {
  describe('StoreLifecycle', () => {
    it('migrate can run twice', async () => {
      await current().migrate();
    });
  });
}

function leadershipContract(current: Current<LeadershipStore & ParkingStore & SeqStore>) {
  describe('LeadershipStore', () => {
    let store: LeadershipStore & ParkingStore & SeqStore;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('one runtime leads at a time; another takes over once the lease lapses', async () => {
      expect(await store.acquireLeadership('r1', 60_000)).toEqual({ leader: true, holder: 'r1', epoch: 1, url: null });
      expect(await store.acquireLeadership('r2', 60_000)).toEqual({ leader: false, holder: 'r1', epoch: 1, url: null });
      expect(await store.acquireLeadership('r1', 60_000, 1)).toEqual({ leader: true, holder: 'r1', epoch: 1, url: null });
      await store.releaseLeadership('r1');
      expect(await store.acquireLeadership('r2', 60_000)).toEqual({ leader: true, holder: 'r2', epoch: 2, url: null });
    });

    it('stores the URL the holder advertises with its term: others read it while the term holds, nobody\'s once it lapsed', async () => {
      expect(await store.acquireLeadership('r1', 60_000, null, 'http://10.0.0.1:8080')).toEqual({ leader: true, holder: 'r1', epoch: 1, url: 'http://10.0.0.1:8080' });
      expect(await store.acquireLeadership('r2', 60_000, null, 'http://10.0.0.2:8080')).toEqual({ leader: false, holder: 'r1', epoch: 1, url: 'http://10.0.0.1:8080' });
      // a renewal writes it again (a leader restarted behind another address names the new one)
      expect(await store.acquireLeadership('r1', 60_000, 1, 'http://10.0.0.9:8080')).toMatchObject({ leader: true, epoch: 1, url: 'http://10.0.0.9:8080' });
      expect(await store.acquireLeadership('r2', 60_000, null, 'http://10.0.0.2:8080')).toMatchObject({ leader: false, url: 'http://10.0.0.9:8080' });
      await store.releaseLeadership('r1');
      // the row lapsed: the next take's URL, not the old holder's
      expect(await store.acquireLeadership('r2', 60_000, null, 'http://10.0.0.2:8080')).toEqual({ leader: true, holder: 'r2', epoch: 2, url: 'http://10.0.0.2:8080' });
      // a take without a URL clears it
      await store.releaseLeadership('r2');
      expect(await store.acquireLeadership('r3', 60_000)).toEqual({ leader: true, holder: 'r3', epoch: 3, url: null });
      expect(await store.acquireLeadership('r1', 60_000, null, 'http://10.0.0.1:8080')).toEqual({ leader: false, holder: 'r3', epoch: 3, url: null });
    });

    it('the same holder taking the row back after it expired starts a new term: statements of its old term stay refused', async () => {
      const t1 = await lead();
      await store.releaseLeadership('r1'); // expired, nobody took it
      // even as a renewal of its old term: the row had expired
      const again = await store.acquireLeadership('r1', 60_000, t1.epoch);
      expect(again).toEqual({ leader: true, holder: 'r1', epoch: t1.epoch + 1, url: null });
      await expect(store.park([m('d1', 1)], t1)).rejects.toMatchObject({ code: 'not-leader' });
      await expect(store.reserveSeqs('d1', 1, t1)).rejects.toMatchObject({ code: 'not-leader' });
      // a renewal of the current term before it expires keeps it
      expect(await store.acquireLeadership('r1', 60_000, again.epoch)).toEqual({ leader: true, holder: 'r1', epoch: again.epoch, url: null });
      // a fresh take by the same holder (it saw its term end) starts a new one
      const fresh = await store.acquireLeadership('r1', 60_000);
      expect(fresh.epoch).toBe(again.epoch + 1);
      // a late renewal of the ended term changes nothing
      expect(await store.acquireLeadership('r1', 60_000, again.epoch)).toMatchObject({ leader: false, epoch: fresh.epoch });
      expect(await store.acquireLeadership('r1', 60_000, fresh.epoch)).toEqual({ leader: true, holder: 'r1', epoch: fresh.epoch, url: null });
    });
  });
}

function seqContract(current: Current<SeqStore & LeadershipStore & Pick<DeliveryStore, 'deviceStreams'>>) {
  describe('SeqStore', () => {
    let store: SeqStore & LeadershipStore & Pick<DeliveryStore, 'deviceStreams'>;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('reserves disjoint, increasing seq blocks per device', async () => {
      const term = await lead();
      expect(await store.reserveSeqs('d1', 10, term)).toBe(1);
      expect(await store.reserveSeqs('d1', 5, term)).toBe(11);
      expect(await store.reserveSeqs('d2', 3, term)).toBe(1);
      expect((await store.deviceStreams()).map((s) => [s.deviceId, s.nextSeq])).toEqual([['d1', 16], ['d2', 4]]);
    });

    it('concurrent reservations never overlap', async () => {
      const term = await lead();
      const firsts = await Promise.all(Array.from({ length: 20 }, () => store.reserveSeqs('d1', 7, term)));
      const seqs = firsts.flatMap((f) => Array.from({ length: 7 }, (_, i) => f + i));
      expect(new Set(seqs).size).toBe(140);
    });

    it('reserves seqs only in a live leader term, checked in the same statement', async () => {
      const t1 = await lead();
      expect(await store.reserveSeqs('d1', 10, t1)).toBe(1);
      await expect(store.reserveSeqs('d1', 10, { holder: 'r2', epoch: t1.epoch })).rejects.toMatchObject({ code: 'not-leader' });
      await expect(store.reserveSeqs('d1', 10, { holder: 'r1', epoch: t1.epoch + 1 })).rejects.toMatchObject({ code: 'not-leader' });
      await store.releaseLeadership('r1'); // expired: even its own holder may not reserve
      await expect(store.reserveSeqs('d1', 10, t1)).rejects.toMatchObject({ code: 'not-leader' });
      const r2 = await store.acquireLeadership('r2', 60_000);
      const t2 = { holder: 'r2', epoch: r2.epoch };
      expect(t2.epoch).toBe(t1.epoch + 1);
      expect(await store.reserveSeqs('d1', 10, t2)).toBe(11);
      // r2 stops, r1 leads again: a new term; its old one stays refused, nothing was reserved by the refusals
      await store.releaseLeadership('r2');
      const r1again = await store.acquireLeadership('r1', 60_000);
      expect(r1again.epoch).toBe(t2.epoch + 1);
      await expect(store.reserveSeqs('d1', 1, t1)).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.reserveSeqs('d1', 1, { holder: 'r1', epoch: r1again.epoch })).toBe(21);
      expect((await store.deviceStreams()).map((s) => [s.deviceId, s.nextSeq])).toEqual([['d1', 22]]);
    });
  });
}

function assignmentContract(current: Current<AssignmentStore & LeadershipStore>) {
  describe('AssignmentStore', () => {
    let store: AssignmentStore & LeadershipStore;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('records the first agent once: a second candidate adopts the winner', async () => {
      const t = await lead();
      expect(await store.getAssignment()).toBeNull();
      const a = await store.recordFirstAgent({ agentId: 'a1', topic: 'q.a1', host: 'h' }, t);
      const b = await store.recordFirstAgent({ agentId: 'a2', topic: 'q.a2', host: 'h' }, t);
      expect(a).toEqual({ agentId: 'a1', topic: 'q.a1', epoch: 1, lock: 0, phase: 'normal', switchId: null, previousAgent: null });
      expect(b).toEqual(a);
      expect(await store.getAssignment()).toEqual(a);
    });

    it('a switch raises the epoch once (compare-and-set), records each phase, and ends unlocked', async () => {
      const t = await lead();
      await store.recordFirstAgent({ agentId: 'a1', topic: 'q.a1', host: 'h' }, t);
      const s = await store.beginSwitch({ expectEpoch: 1, switchId: 'sw1', reason: 'agent a1 killed', term: t });
      expect(s).toEqual({ agentId: 'a1', topic: 'q.a1', epoch: 2, lock: 1, phase: 'switching', switchId: 'sw1', previousAgent: 'a1' });
      // a rival runtime that saw epoch 1 loses; so does a second switch while this one runs
      expect(await store.beginSwitch({ expectEpoch: 1, switchId: 'sw-rival', reason: 'x', term: t })).toBeNull();
      expect(await store.beginSwitch({ expectEpoch: 2, switchId: 'sw-rival', reason: 'x', term: t })).toBeNull();
      expect(await store.recordCandidate('sw1', { agentId: 'a2', topic: 'q.a2', host: 'h' }, t)).toMatchObject({ agentId: 'a2', topic: 'q.a2', previousAgent: 'a1', phase: 'switching' });
      expect(await store.setPhase('sw1', 'draining', t)).toMatchObject({ phase: 'draining', lock: 1 });
      await store.setPhase('sw1', 'draining', t, { moved: 7 });
      expect(await store.setPhase('sw1', 'replaying', t)).toMatchObject({ phase: 'replaying' });
      expect(await store.completeSwitch('sw1', 3, t)).toEqual({ agentId: 'a2', topic: 'q.a2', epoch: 2, lock: 0, phase: 'normal', switchId: 'sw1', previousAgent: 'a1' });
      await expect(store.setPhase('sw-none', 'draining', t)).rejects.toThrow(/no switch is running/);
      const [rec] = await store.listSwitches();
      expect(rec).toMatchObject({ id: 'sw1', fromAgent: 'a1', toAgent: 'a2', epoch: 2, reason: 'agent a1 killed', phase: 'normal', moved: 7, replayed: 3 });
      expect(rec!.drainingAt).toBeInstanceOf(Date);
      expect(rec!.replayingAt).toBeInstanceOf(Date);
      expect(rec!.completedAt).toBeInstanceOf(Date);
      expect(await store.listSwitches()).toHaveLength(1);
    });
  });
}

/** The rule the leader-only writes of several roles share (src/ports.ts, "The Store port, by role"). */
function leaderOnlyWritesContract(current: Current<LeadershipStore & AssignmentStore & ParkingStore & DeliveryStore>) {
  describe('leader-only writes (AssignmentStore, ParkingStore, DeliveryStore)', () => {
    let store: LeadershipStore & AssignmentStore & ParkingStore & DeliveryStore;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('writes only a leader may make are refused once its term is over, and change nothing', async () => {
      const t1 = await lead();
      const a1 = { agentId: 'a1', topic: 'q.a1', host: 'h' };
      const stale = { holder: 'r1', epoch: t1.epoch };
      await store.releaseLeadership('r1');
      const t2 = { holder: 'r2', epoch: (await store.acquireLeadership('r2', 60_000)).epoch };
      // a late statement from the former leader: refused, nothing recorded
      await expect(store.recordFirstAgent(a1, stale)).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.getAssignment()).toBeNull();
      await store.recordFirstAgent(a1, t2);
      await expect(store.beginSwitch({ expectEpoch: 1, switchId: 'sw-stale', reason: 'late', term: stale })).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.getAssignment()).toMatchObject({ epoch: 1, lock: 0, phase: 'normal' });
      expect(await store.listSwitches()).toEqual([]);
      await expect(store.park([m('d1', 1)], stale)).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.countParked()).toBe(0);
      await store.recordSettled([{ deviceId: 'd1', watermark: 2, ranges: [[5, 9]] }], t2, 2);
      await expect(store.recordSettled([{ deviceId: 'd1', watermark: 1, ranges: [] }], stale, 3)).rejects.toMatchObject({ code: 'not-leader' });
      // a write of this term that lands after a newer one (it outlived its deadline) keeps no ranges; its watermark still counts
      await store.recordSettled([{ deviceId: 'd1', watermark: 3, ranges: [[5, 6]] }], t2, 1);
      expect(await store.settledRecords()).toEqual([{ deviceId: 'd1', watermark: 3, ranges: [[5, 9]] }]);
      await store.recordSettled([{ deviceId: 'd1', watermark: 2, ranges: [[5, 9]] }], t2, 4);
      expect(await store.settledRecords()).toEqual([{ deviceId: 'd1', watermark: 3, ranges: [[5, 9]] }]);
      // a switch the new leader runs cannot be moved on by the former one
      await store.beginSwitch({ expectEpoch: 1, switchId: 'sw2', reason: 'test', term: t2 });
      await expect(store.recordCandidate('sw2', { agentId: 'a2', topic: 'q.a2', host: 'h' }, stale)).rejects.toMatchObject({ code: 'not-leader' });
      await expect(store.setPhase('sw2', 'draining', stale)).rejects.toMatchObject({ code: 'not-leader' });
      await expect(store.completeSwitch('sw2', 0, stale)).rejects.toMatchObject({ code: 'not-leader' });
      expect(await store.getAssignment()).toMatchObject({ agentId: 'a1', lock: 1, phase: 'switching', switchId: 'sw2' });
      // and an expired term is refused even to its own holder
      await store.releaseLeadership('r2');
      await expect(store.park([m('d1', 1)], t2)).rejects.toMatchObject({ code: 'not-leader' });
    });
  });
}

function parkingContract(current: Current<ParkingStore & LeadershipStore>) {
  describe('ParkingStore', () => {
    let store: ParkingStore & LeadershipStore;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('parks in order, fetches oldest first, deletes by id; a repeated park is ignored', async () => {
      const t = await lead();
      await store.park([m('d1', 1), m('d2', 1), m('d1', 2)], t);
      await store.park([m('d1', 1)], t);
      expect(await store.countParked()).toBe(3);
      expect(await store.countParkedByDevice()).toEqual({ d1: 2, d2: 1 });
      const first = await store.fetchParked(2);
      expect(first.map((r) => `${r.message.deviceId}:${r.message.seq}`)).toEqual(['d1:1', 'd2:1']);
      expect(first[0]!.message).toEqual(m('d1', 1));
      await store.deleteParked(first.map((r) => r.id));
      expect((await store.fetchParked(10)).map((r) => r.message.seq)).toEqual([2]);
    });

    it('fetches and counts the rows of one device, or of all but some devices, oldest first', async () => {
      const t = await lead();
      await store.park([m('d1', 1), m('d2', 1), m('d3', 1), m('d1', 2), m('d2', 2)], t);
      const keys = (rows: Array<{ message: { deviceId: string; seq: number } }>) => rows.map((r) => `${r.message.deviceId}:${r.message.seq}`);
      expect(keys(await store.fetchParked(10, { deviceId: 'd1' }))).toEqual(['d1:1', 'd1:2']);
      expect(keys(await store.fetchParked(1, { deviceId: 'd2' }))).toEqual(['d2:1']);
      expect(await store.countParked({ deviceId: 'd2' })).toBe(2);
      expect(keys(await store.fetchParked(10, { except: ['d1', 'd3'] }))).toEqual(['d2:1', 'd2:2']);
      expect(await store.countParked({ except: ['d1'] })).toBe(3);
      expect(keys(await store.fetchParked(2, { except: [] }))).toEqual(['d1:1', 'd2:1']);
      expect(await store.countParked({ except: [] })).toBe(5);
      expect(await store.countParked({ deviceId: 'd1', except: ['d1'] })).toBe(0);
      expect(await store.countParked({ deviceId: 'nope' })).toBe(0);
    });

    it('tells which messages are parked, by device and seq; one resolved as not parked stays so', async () => {
      await store.park([m('d1', 1), m('d2', 7)], await lead());
      const found = await store.resolveParked([{ deviceId: 'd1', seq: 1 }, { deviceId: 'd1', seq: 7 }, { deviceId: 'd2', seq: 7 }]);
      expect(found.map((k) => `${k.deviceId}:${k.seq}`).sort()).toEqual(['d1:1', 'd2:7']);
      expect(await store.resolveParked([])).toEqual([]);
      // d1:7 was resolved "not parked": a park of it that lands late (delayed on its connection) changes nothing
      await store.park([m('d1', 7)], await lead());
      expect(await store.countParked()).toBe(2);
      expect(await store.countParkedByDevice()).toEqual({ d1: 1, d2: 1 });
      expect((await store.fetchParked(10)).map((r) => `${r.message.deviceId}:${r.message.seq}`)).toEqual(['d1:1', 'd2:7']);
      // and asking again (an answer lost) still says not parked
      expect(await store.resolveParked([{ deviceId: 'd1', seq: 7 }])).toEqual([]);
    });
  });
}

function deliveryContract(current: Current<DeliveryStore & SeqStore & LeadershipStore>) {
  describe('DeliveryStore', () => {
    let store: DeliveryStore & SeqStore & LeadershipStore;
    beforeEach(() => void (store = current()));
    const lead = () => leadOf(store);

    it('watermarks only rise', async () => {
      await store.reserveSeqs('d1', 100, await lead());
      await store.advanceWatermarks([{ deviceId: 'd1', seq: 40 }]);
      await store.advanceWatermarks([{ deviceId: 'd1', seq: 30 }]);
      expect((await store.deviceStreams())[0]).toMatchObject({ deviceId: 'd1', watermark: 40, nextSeq: 101 });
    });
  });
}

function agentContract(current: Current<AgentStore>) {
  describe('AgentStore', () => {
    it('upserts agents and keeps the latest heartbeat', async () => {
      const store = current();
      const t1 = new Date('2026-01-01T00:00:01Z');
      const t0 = new Date('2026-01-01T00:00:00Z');
      await store.upsertAgent({ agentId: 'a1', topic: 'q', host: 'h', status: 'up', lastHeartbeat: t1 });
      await store.upsertAgent({ agentId: 'a1', topic: 'q', host: 'h', status: 'up', lastHeartbeat: t0 });
      expect(await store.listAgents()).toEqual([{ agentId: 'a1', topic: 'q', host: 'h', status: 'up', lastHeartbeat: t1 }]);
    });
  });
}
