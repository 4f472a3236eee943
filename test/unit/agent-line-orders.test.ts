// Issue 15 on the agent's side, end to end in one agent process over the in-memory broker on a
// simulated clock: the test plays the runtime (it grants leases carrying line orders and reads the
// heartbeats and receipts). The orders of the newest grant stand; a paused line shows in the
// heartbeats; a refusal's dead-letter receipt says the line is blocked; grants read back as sent.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import type { DeviceClient, DeviceOutcome, LineOrder, WireMessage } from '../../src/ports.ts';
import { MAX_LINE_ORDERS, parseGrant, parseHeartbeat, parseReceipt, type HeartbeatEvent, type ReceiptEvent } from '../../src/side-channel.ts';
import { agentKey, unseal } from '../../src/trust.ts';
import { TEST_SECRET, agentTrust, signedGrant, signedMessage } from '../support/trust.ts';
import { oneAgentGround } from '../support/agent-world.ts';

const msg = (deviceId: string, seq: number): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: null });
const applied: DeviceOutcome = { kind: 'applied', status: 200 };
const order = (o: Partial<LineOrder>): LineOrder => ({ paused: false, blockedAt: null, retry: null, releasedThrough: 0, ...o });

/** One agent; the test's runtime answers each heartbeat with a grant carrying `t.lines` (none when empty; `lines` from the first grant on). */
async function agentWorld(answer: (m: WireMessage) => DeviceOutcome, lines: Record<string, LineOrder> = {}) {
  const { world, gate, conn, runtime, queue } = await oneAgentGround();
  const sent: string[] = [];
  const client: DeviceClient = {
    send: (_d, m) => (sent.push(`${m.deviceId}:${m.seq}`), new Promise((resolve) => world.at(world.now + 2, () => gate.run(() => resolve(answer(m)))))),
    watermark: async () => null,
    close: async () => {},
  };
  const t = { lines, beats: [] as HeartbeatEvent[], receipts: [] as ReceiptEvent[], sent };
  const open = (channel: 'heartbeats' | 'receipts', p: unknown) => {
    const sealed = unseal((id) => agentKey(TEST_SECRET, id), channel, p);
    if ('invalid' in sealed) throw new Error(sealed.invalid);
    return sealed.event;
  };
  await runtime.subscribeEvents('heartbeats', (p) => {
    const h = parseHeartbeat(open('heartbeats', p));
    if ('invalid' in h) throw new Error(h.invalid);
    t.beats.push(h);
    const lines = Object.keys(t.lines).length > 0 ? { lines: t.lines } : {};
    void runtime.publishEvent('control', signedGrant(h.agentId, { incarnation: h.incarnation, epoch: 1, beat: h.beat, durationMs: 1500, watermarks: {}, ...lines }), { key: h.agentId });
  });
  await runtime.subscribeEvents('receipts', (p) => {
    const r = parseReceipt(open('receipts', p));
    if ('invalid' in r) throw new Error(r.invalid);
    t.receipts.push(r);
  });
  const agent = await startAgent(
    { id: 'a1', devices: [{ id: 'd1', url: 'http://d1.sim' }, { id: 'd2', url: 'http://d2.sim' }], namespace: 't', ...agentTrust('a1'), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 100 },
    { broker: conn, deviceClient: client, clock: world.clock(gate), incarnation: 'a1#1' },
  );
  const until = (ms: number) => world.runTo(() => false, world.now + ms);
  const publish = (deviceId: string, seq: number) => runtime.publish(queue, signedMessage(msg(deviceId, seq)));
  return { t, agent, until, publish };
}

describe('an agent under the runtime line orders', () => {
  it('pauses a line by the grants, says so in its heartbeats, and delivers what it held in order once a grant no longer pauses it', async () => {
    const w = await agentWorld(() => applied);
    w.t.lines = { d1: order({ paused: true }) };
    await w.until(300);
    for (let s = 1; s <= 3; s++) await w.publish('d1', s);
    await w.publish('d2', 1);
    await w.until(1000);
    expect(w.t.sent).toEqual(['d2:1']);
    expect(w.t.beats.at(-1)!.lanes).toEqual([{ deviceId: 'd1', state: 'paused', seq: 1, held: 3, reason: expect.stringMatching(/line order pauses/), since: expect.any(Number) }]);
    w.t.lines = {};
    await w.until(1000);
    expect(w.t.sent).toEqual(['d2:1', 'd1:1', 'd1:2', 'd1:3']);
    expect(w.t.beats.at(-1)!.lanes).toBeUndefined();
    await w.agent.stop();
  });

  it('says in the dead-letter receipt that the refusal blocks the line, keeps it blocked under grants without the block, and goes on once one releases it', async () => {
    const w = await agentWorld((m) => (m.seq === 2 ? { kind: 'permanent', status: 409, reason: 'device answered 409', response: 'conflict' } : applied));
    await w.until(300);
    for (let s = 1; s <= 3; s++) await w.publish('d1', s);
    await w.until(1000);
    expect(w.t.receipts.filter((r) => r.type === 'dead-letter')).toMatchObject([{ type: 'dead-letter', agentId: 'a1', entry: { deviceId: 'd1', seq: 2 }, blocked: true, anomaly: false }]);
    expect(w.t.sent).toEqual(['d1:1', 'd1:2']);
    // grants went on meanwhile, saying nothing of the block: still blocked
    expect(w.t.beats.at(-1)!.lanes).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, reason: expect.stringMatching(/baton unblock d1 --retry/) }]);
    w.t.lines = { d1: order({ releasedThrough: 2 }) };
    await w.until(1000);
    expect(w.t.sent).toEqual(['d1:1', 'd1:2', 'd1:3']);
    expect(w.t.beats.at(-1)!.lanes).toBeUndefined();
    await w.agent.stop();
  });

  it('reports a retried seq applied in a range of its own that names the retry (the runtime then counts it applied, also after a skip)', async () => {
    let fixed = false;
    const w = await agentWorld((m) => (m.seq === 2 && !fixed ? { kind: 'permanent', status: 409, reason: 'device answered 409', response: 'conflict' } : applied));
    await w.until(300);
    for (let s = 1; s <= 3; s++) await w.publish('d1', s);
    await w.until(1000);
    fixed = true;
    w.t.lines = { d1: order({ blockedAt: 2, retry: { seq: 2, n: 5 }, releasedThrough: 1 }) };
    await w.publish('d1', 2);
    await w.until(1000);
    expect(w.t.sent).toEqual(['d1:1', 'd1:2', 'd1:2', 'd1:3']);
    const ranges = w.t.receipts.flatMap((r) => (r.type === 'applied' ? r.ranges : []));
    expect(ranges).toContainEqual({ deviceId: 'd1', from: 2, to: 2, retry: 5 });
    expect(ranges.filter((g) => g.from <= 3 && g.to >= 3 && g.retry === undefined)).toHaveLength(1);
    await w.agent.stop();
  });

  it("holds a line at an order's blockedAt from its first grant on (taking over after a failover)", async () => {
    const w = await agentWorld(() => applied, { d1: order({ blockedAt: 4, releasedThrough: 3 }) });
    for (const s of [5, 6]) await w.publish('d1', s);
    await w.until(1000);
    expect(w.t.sent).toEqual([]);
    expect(w.t.beats.at(-1)!.lanes).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 4, status: null }]);
    w.t.lines = { d1: order({ releasedThrough: 4 }) };
    await w.until(1000);
    expect(w.t.sent).toEqual(['d1:5', 'd1:6']);
    await w.agent.stop();
  });
});

describe('applied receipts on the wire', () => {
  const receipt = (ranges: unknown) => ({ type: 'applied', agentId: 'a1', epoch: 3, ranges });

  it('a range naming the retry it answers reads back with it; one without (as older agents send) reads back without', () => {
    const ranges = [{ deviceId: 'd1', from: 1, to: 4 }, { deviceId: 'd1', from: 5, to: 5, retry: 3000001 }];
    expect(parseReceipt(JSON.parse(JSON.stringify(receipt(ranges))))).toEqual(receipt(ranges));
    expect(parseReceipt(receipt([{ deviceId: 'd1', from: 1, to: 4 }]))).toEqual(receipt([{ deviceId: 'd1', from: 1, to: 4 }]));
  });

  it('refuses a retry that is not a positive n on a range of one seq', () => {
    for (const bad of [{ from: 5, to: 6, retry: 1 }, { from: 5, to: 5, retry: 0 }, { from: 5, to: 5, retry: 'x' }, { from: 5, to: 5, retry: null }]) {
      expect(parseReceipt(receipt([{ deviceId: 'd1', ...bad }]))).toMatchObject({ invalid: expect.stringMatching(/bad retry/) });
    }
  });
});

describe('line orders on the wire', () => {
  const grant = (lines: unknown) => ({ type: 'lease', agentId: 'a1', incarnation: 'i', epoch: 3, beat: 7, durationMs: 1500, watermarks: { d1: 4 }, lines });

  it('a grant reads back with its line orders; one without orders has none', () => {
    const lines = { d1: order({ paused: true }), d2: order({ blockedAt: 9, retry: { seq: 9, n: 2 }, releasedThrough: 8 }) };
    expect(parseGrant(JSON.parse(JSON.stringify(grant(lines))))).toEqual(grant(lines));
    expect(parseGrant(grant(undefined))).not.toHaveProperty('lines');
    expect(parseGrant(grant({}))).not.toHaveProperty('lines');
  });

  it('refuses a grant whose orders cannot be read (taking its lease without them could send on a held line)', () => {
    for (const bad of [[], { d1: { paused: 'yes', releasedThrough: 0 } }, { d1: order({ retry: { seq: 1 } as never }) }, { d1: { ...order({}), blockedAt: -1 } }, { d1: { paused: false } }]) {
      expect(parseGrant(grant(bad))).toBeNull();
    }
    const many = Object.fromEntries(Array.from({ length: MAX_LINE_ORDERS + 1 }, (_, i) => [`d${i}`, order({})]));
    expect(parseGrant(grant(many))).toBeNull();
  });
});
