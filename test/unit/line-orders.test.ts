// The runtime's line orders (line-orders.ts) over the memory store: loaded once per leader term,
// changed in the term first and in memory only then (a change outside the term, or before the
// term's orders are loaded, changes nothing); what holds a line; what the grants carry; a retry's n
// rises above every earlier one, also across a refusal and a change of leader. And the lease
// granter repeats the orders in every grant.
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { LeaderTerm, LineOrder } from '../../src/ports.ts';
import { LeaseGranter } from '../../src/runtime/lease-granter.ts';
import { heldBy, LineOrders, NO_ORDER } from '../../src/runtime/line-orders.ts';
import type { LeaseGrant } from '../../src/side-channel.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { silentLogger } from '../../src/logger.ts';

function rig() {
  const world = new World(5);
  const memory = createMemoryStore({ now: () => world.now });
  /** writes that commit, then fail (the connection drops after COMMIT) */
  let ambiguous = 0;
  const store = { ...memory, setLineOrder: async (o: Parameters<typeof memory.setLineOrder>[0], t: LeaderTerm) => {
    await memory.setLineOrder(o, t);
    if (ambiguous > 0 && ambiguous--) throw new Error('Connection terminated unexpectedly');
  } };
  let term: LeaderTerm | null = null;
  const lead = async (holder = 'r1') => {
    const l = await store.acquireLeadership(holder, 60_000);
    term = { holder, epoch: l.epoch };
    return term;
  };
  const released: string[] = [];
  const orders = new LineOrders({ store, deviceSet: new Set(['fw1', 'fw2', 'fw3']), term: () => term, clock: world.clock(new Gate('r1')), log: silentLogger(), deadlineMs: 1000 });
  orders.onRelease = (id) => released.push(id);
  return { world, store, orders, lead, released, endTerm: () => (term = null), by: { by: 'test', note: 'n' }, ambiguous: (n: number) => (ambiguous = n) };
}

const order = (o: Partial<LineOrder>): LineOrder => ({ ...NO_ORDER, ...o });

describe('line orders', () => {
  it('a change is written in the term, then taken into memory; outside it, or before the term is loaded, nothing changes', async () => {
    const c = rig();
    await expect(c.orders.change('fw1', (o) => ({ ...o, paused: true }), c.by)).rejects.toMatchObject({ code: 'not-leader' });
    const t = await c.lead();
    await expect(c.orders.change('fw1', (o) => ({ ...o, paused: true }), c.by)).rejects.toMatchObject({ code: 'database-unavailable' });
    await c.orders.load(t);
    const r = await c.orders.change('fw1', (o) => ({ ...o, paused: true }), { by: 'cli:alice', note: 'maintenance' });
    expect(r).toMatchObject({ changed: true, before: NO_ORDER, after: order({ paused: true }) });
    expect(await c.store.lineOrders()).toMatchObject([{ deviceId: 'fw1', order: order({ paused: true }), by: 'cli:alice', note: 'maintenance' }]);
    expect(c.orders.holding('fw1')).toBe(true);
    // the same order again writes nothing
    expect(await c.orders.change('fw1', (o) => ({ ...o, paused: true }), c.by)).toMatchObject({ changed: false });
    // another runtime took the leadership: the write is refused and memory keeps what is stored
    await c.store.releaseLeadership('r1');
    await c.store.acquireLeadership('r2', 60_000);
    await expect(c.orders.change('fw1', (o) => ({ ...o, paused: false }), c.by)).rejects.toMatchObject({ code: 'not-leader' });
    expect(c.orders.order('fw1').paused).toBe(true);
    expect((await c.store.lineOrders())[0]!.order.paused).toBe(true);
    expect(c.released).toEqual([]);
  });

  it('loads the stored orders once per term: what holds a line, what is left out of the replay, what the grants carry', async () => {
    const c = rig();
    const t1 = await c.lead();
    await c.store.setLineOrder({ deviceId: 'fw1', order: order({ paused: true }), by: 'x', at: 1, note: '' }, t1);
    await c.store.setLineOrder({ deviceId: 'fw2', order: order({ blockedAt: 7, retry: { seq: 7, n: 3 } }), by: 'x', at: 1, note: '' }, t1);
    await c.store.setLineOrder({ deviceId: 'fw3', order: order({}), by: 'x', at: 1, note: '' }, t1);
    await c.store.setLineOrder({ deviceId: 'gone', order: order({ paused: true }), by: 'x', at: 1, note: '' }, t1);
    await c.orders.load(t1);
    expect(c.orders.held()).toEqual(['fw1']);
    // a retry pending is not held by its order: it is being released (its message to publish again)
    expect(c.orders.holding('fw2')).toBe(true);
    expect(c.orders.isReleasing('fw2')).toBe(true);
    expect(c.orders.retryToPublish('fw2')).toEqual({ seq: 7, n: 3 });
    c.orders.retryPublished('fw2', 3);
    expect(c.orders.retryToPublish('fw2')).toBeNull();
    c.orders.endRelease('fw2');
    expect(c.orders.holding('fw2')).toBe(false);
    expect(c.orders.holding('fw3')).toBe(false);
    // only the orders that say something, of configured devices
    expect(c.orders.lines()).toEqual({ fw1: order({ paused: true }), fw2: order({ blockedAt: 7, retry: { seq: 7, n: 3 } }) });
    // the same term again reads nothing: memory is what this term wrote
    await c.store.setLineOrder({ deviceId: 'fw3', order: order({ paused: true }), by: 'x', at: 1, note: '' }, t1);
    await c.orders.load(t1);
    expect(c.orders.holding('fw3')).toBe(false);
    // a new term reads them all again
    await c.store.releaseLeadership('r1');
    await c.orders.load(await c.lead());
    expect(c.orders.held()).toEqual(['fw1', 'fw3']);
  });

  it('a write whose outcome is not known (it committed, then failed): the stored order is read back and stands, at the next change or a deadline later', async () => {
    const c = rig();
    await c.orders.load(await c.lead());
    await c.orders.change('fw1', (o) => ({ ...o, paused: true }), c.by);
    c.ambiguous(1);
    await expect(c.orders.change('fw1', (o) => ({ ...o, paused: false }), c.by)).rejects.toThrow(/terminated/);
    expect(c.orders.holding('fw1')).toBe(true);
    // the next change reads back first: fw1 was resumed after all (its release starts)
    await c.orders.change('fw2', (o) => ({ ...o, paused: true }), c.by);
    expect(c.orders.order('fw1').paused).toBe(false);
    expect(c.released).toEqual(['fw1']);
    // with no change to come, a deadline later
    c.ambiguous(1);
    await expect(c.orders.change('fw2', (o) => ({ ...o, paused: false }), c.by)).rejects.toThrow(/terminated/);
    expect(c.orders.heldByOrder('fw2')).toBe(true);
    await c.world.run(() => !c.orders.heldByOrder('fw2'), c.world.now + 5000);
    expect(c.orders.heldByOrder('fw2')).toBe(false);
    expect(c.released).toEqual(['fw1', 'fw2']);
  });

  it('what holds a line: paused; blocked at a seq no order released and not retried', () => {
    expect(heldBy(order({ paused: true }))).toBe(true);
    expect(heldBy(order({ blockedAt: 5 }))).toBe(true);
    expect(heldBy(order({ blockedAt: 5, releasedThrough: 5 }))).toBe(false);
    expect(heldBy(order({ blockedAt: 5, retry: { seq: 5, n: 1 } }))).toBe(false);
    expect(heldBy(order({ blockedAt: 5, retry: { seq: 5, n: 1 }, paused: true }))).toBe(true);
    expect(heldBy(NO_ORDER)).toBe(false);
  });

  it('an order that frees a line starts its release; one that holds it again does not', async () => {
    const c = rig();
    await c.orders.load(await c.lead());
    await c.orders.change('fw1', (o) => ({ ...o, paused: true }), c.by);
    await c.orders.change('fw1', (o) => ({ ...o, blockedAt: 4 }), c.by);
    await c.orders.change('fw1', (o) => ({ ...o, paused: false }), c.by);
    expect(c.released).toEqual([]);
    await c.orders.change('fw1', (o) => ({ ...o, retry: { seq: 4, n: 1 } }), c.by);
    expect(c.released).toEqual(['fw1']);
    expect(c.orders.isReleasing('fw1')).toBe(true);
    c.orders.endRelease('fw1');
    // refused again: held again; a skip frees it
    await c.orders.change('fw1', (o) => ({ ...o, retry: null }), c.by);
    expect(c.orders.holding('fw1')).toBe(true);
    await c.orders.change('fw1', (o) => ({ ...o, releasedThrough: 4 }), c.by);
    expect(c.released).toEqual(['fw1', 'fw1']);
  });

  it("a retry's n rises above every earlier one: after a refusal cleared the order's retry, and after a change of leader", async () => {
    const c = rig();
    const t1 = await c.lead();
    await c.orders.load(t1);
    const n1 = c.orders.nextRetryN('fw1');
    await c.orders.change('fw1', (o) => ({ ...o, blockedAt: 3, retry: { seq: 3, n: n1 } }), c.by);
    await c.orders.change('fw1', (o) => ({ ...o, retry: null }), c.by);
    const n2 = c.orders.nextRetryN('fw1');
    expect(n2).toBeGreaterThan(n1);
    await c.orders.change('fw1', (o) => ({ ...o, retry: { seq: 3, n: n2 } }), c.by);
    await c.orders.change('fw1', (o) => ({ ...o, retry: null }), c.by);
    await c.store.releaseLeadership('r1');
    await c.orders.load(await c.lead('r2'));
    expect(c.orders.nextRetryN('fw1')).toBeGreaterThan(n2);
  });
});

describe('the lease granter', () => {
  it('repeats the line orders in every grant; none when no order says anything', () => {
    const world = new World(1);
    const sent: LeaseGrant[] = [];
    const broker = { publishEvent: async (_c: string, g: object) => void sent.push(g as LeaseGrant) };
    const granter = new LeaseGranter({ broker, clock: world.clock(new Gate('r')), durationMs: 1500, waitForOldLease: false, mayGrant: () => true, seal: (g) => g });
    let lines: Record<string, LineOrder> = {};
    granter.lines = () => lines;
    granter.setTarget({ agentId: 'a1', epoch: 1 });
    const beat = (b: number) => granter.onHeartbeat({ type: 'heartbeat', agentId: 'a1', host: 'h', pid: 1, sentAt: 0, beat: b, incarnation: 'a1#1' });
    beat(1);
    expect(sent[0]!.lines).toBeUndefined();
    lines = { fw1: order({ paused: true }) };
    beat(2);
    beat(3);
    expect(sent[1]!.lines).toEqual({ fw1: order({ paused: true }) });
    expect(sent[2]!.lines).toEqual({ fw1: order({ paused: true }) });
  });
});
