// Exact delivery accounting on the runtime: applied(), lag and the stored watermark count a seq only
// when a receipt covered that seq itself (or it was dead-lettered), never because a higher one was;
// an agent's anomaly (a seq below its watermark nobody applied) is counted, logged and raised.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { DeviceModel } from '../../src/devices/model.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { Broker, Delivery } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { type RuntimeEvents } from '../../src/api.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { simCluster } from '../support/sim-cluster.ts';
import { agentTrust, runtimeTrust, signedHeartbeat, signedReceipt } from '../support/trust.ts';

async function leader() {
  const world = new World(7);
  const rabbit = new MemoryRabbit('ac');
  const store = createMemoryStore({ now: () => world.now });
  const gate = new Gate('r1');
  const runtime = createRuntime({ devices: ['fw1'], runtimeId: 'r1', namespace: 'ac', ...runtimeTrust, leaderTtl: 1500, ports: { broker: rabbit.connect({ schedule: gate.run }), store }, clock: world.clock(gate) });
  const receipts: Array<RuntimeEvents['receipts.applied']> = [];
  runtime.on('receipts.applied', (e) => receipts.push(e));
  // an agent as the runtime sees it: a consumer on its queue (holding what it gets), heartbeats, receipts
  const agent = rabbit.connect({ schedule: (f) => f() });
  await agent.start();
  const held: Delivery[] = [];
  await agent.consume(await agent.assertAgentQueue('a1'), (d) => void held.push(d), { prefetch: 100 });
  let beat = 0;
  const heartbeat = () => agent.publishEvent('heartbeats', signedHeartbeat('a1', ++beat));
  await runtime.start();
  await heartbeat();
  await world.run(() => false, world.now + 200);
  /** a receipt of a1, which holds epoch 1 (the first agent recorded) */
  const receipt = async (r: object, from = 'a1') => {
    const before = receipts.length;
    await agent.publishEvent('receipts', signedReceipt(from, { epoch: 1, ...r }));
    await world.run(() => receipts.length > before, world.now + 100);
  };
  /** dispatches `n` messages: seqs 1..n are handed out (a receipt counts only for those) */
  const handOut = async (n: number) => {
    for (let i = 1; i <= n; i++) await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/p/${i}` });
  };
  /** settles `p` within `ms` of simulated time, or says it is still pending */
  const within = async (p: Promise<void>, ms: number) => {
    let outcome = 'pending';
    const watched = p.then(() => (outcome = 'applied'), (e: Error & { code?: string }) => (outcome = e.code ?? e.message));
    await world.run(() => outcome !== 'pending', world.now + ms);
    void watched;
    return outcome;
  };
  const lag = async () => (await runtime.status()).devices.find((d) => d.deviceId === 'fw1')?.lag;
  const storedWatermark = async () => (await store.deviceStreams()).find((d) => d.deviceId === 'fw1')?.watermark ?? 0;
  return { world, runtime, store, held, heartbeat, receipt, handOut, within, lag, storedWatermark, receipts, agent };
}

describe('exact delivery accounting', () => {
  it('a receipt for seq 10 does not make seq 9 applied: applied(9) waits while applied(10) resolves', async () => {
    const c = await leader();
    await c.handOut(10);
    const nine = c.within(c.runtime.applied({ deviceId: 'fw1', seq: 9 }, { timeoutMs: 5000 }), 1000);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 10, to: 10 }] });
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 10 }, { timeoutMs: 5000 }), 100)).toBe('applied');
    expect(await nine).toBe('pending');
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 8, to: 9 }] });
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 9 }, { timeoutMs: 5000 }), 100)).toBe('applied');
  });

  it('a receipt counts only for seqs handed out, and only from the agent that holds its epoch', async () => {
    const c = await leader();
    await c.handOut(3);
    // signed by the lease holder, but naming seqs up to 10^12: only 1..3 were ever sent
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1e12 }] });
    await c.world.run(() => false, c.world.now + 500);
    expect(await c.storedWatermark()).toBe(3);
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 3 }, { timeoutMs: 5000 }), 100)).toBe('applied');
    const next = await c.runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p/4' });
    expect(await c.within(c.runtime.applied(next, { timeoutMs: 5000 }), 1000)).toBe('pending');
    // signed by another agent of the deployment, which never held epoch 1
    const c2 = await leader();
    await c2.handOut(3);
    await c2.agent.publishEvent('receipts', signedReceipt('a2', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'fw1', from: 1, to: 3 }] }));
    await c2.world.run(() => false, c2.world.now + 500);
    expect(c2.receipts).toEqual([]);
    expect(await c2.lag()).toBe(3);
    // nor under an epoch nobody was granted
    await c2.receipt({ type: 'applied', epoch: 7, ranges: [{ deviceId: 'fw1', from: 1, to: 3 }] }).catch(() => {});
    await c2.world.run(() => false, c2.world.now + 500);
    expect(c2.receipts).toEqual([]);
    expect(await c2.lag()).toBe(3);
  });

  it('lag and the stored watermark do not pass a dispatched seq that was not applied', async () => {
    const c = await leader();
    const sent = [];
    for (let i = 1; i <= 3; i++) sent.push(await c.runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/p/${i}` }));
    expect(sent.map((d) => d.seq)).toEqual([1, 2, 3]);
    expect(await c.lag()).toBe(3);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 3, to: 3 }] });
    await c.world.run(() => false, c.world.now + 500); // watermarks are stored every 200 ms
    expect(await c.lag()).toBe(2);
    expect(await c.storedWatermark()).toBe(0);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }] });
    await c.world.run(() => false, c.world.now + 500);
    expect(await c.lag()).toBe(1);
    expect(await c.storedWatermark()).toBe(1);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2 }] });
    await c.world.run(() => false, c.world.now + 500);
    expect(await c.lag()).toBe(0);
    expect(await c.storedWatermark()).toBe(3);
  });

  it('a dead letter rejects applied() of its seq, also when asked after the fact, and leaves the others waiting', async () => {
    const c = await leader();
    await c.handOut(10);
    const anomalies: Array<RuntimeEvents['delivery.anomaly']> = [];
    c.runtime.on('delivery.anomaly', (e) => anomalies.push(e));
    const entry = { deviceId: 'fw1', seq: 6, epoch: 1, agentId: 'a1', reason: 'seq 6 is at or below the watermark 1005 but was never applied', status: null, response: null, payload: '{}' };
    const dead = new Promise((resolve) => c.runtime.on('message.dead-lettered', resolve));
    await c.agent.publishEvent('receipts', signedReceipt('a1', { type: 'dead-letter', epoch: 1, anomaly: true, entry }));
    await c.world.run(() => anomalies.length > 0, c.world.now + 100);
    await dead;
    expect(anomalies).toEqual([{ deviceId: 'fw1', seq: 6, agentId: 'a1', reason: entry.reason }]);
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 6 }, { timeoutMs: 5000 }), 100)).toBe('device-rejected');
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 5 }, { timeoutMs: 5000 }), 1000)).toBe('pending');
    expect(await c.runtime.metrics()).toMatch(/baton_anomalies_total\{device="fw1"\} 1/);
  });

  it("an agent's anomaly for a seq a receipt said was applied is a redelivery: not recorded as a dead letter", async () => {
    const c = await leader();
    await c.handOut(10);
    const anomalies: unknown[] = [];
    c.runtime.on('delivery.anomaly', (e) => anomalies.push(e));
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 4, to: 6 }] });
    const entry = { deviceId: 'fw1', seq: 6, epoch: 2, agentId: 'a1', reason: 'seq 6 is at or below the watermark 9 but was never applied', status: null, response: null, payload: '{}' };
    await c.agent.publishEvent('receipts', signedReceipt('a1', { type: 'dead-letter', epoch: 1, anomaly: true, entry }));
    await c.world.run(() => false, c.world.now + 200);
    expect(anomalies).toEqual([]);
    expect(await c.store.listDeadLetters()).toEqual([]);
    expect(await c.within(c.runtime.applied({ deviceId: 'fw1', seq: 6 }, { timeoutMs: 5000 }), 100)).toBe('applied');
  });

  it('end to end: the agent reports every seq it applied as ranges, and each applied() resolves on its own seq', async () => {
    const c = simCluster({ seed: 3, devices: 1 });
    const r1 = await c.runtime('r1');
    const ranges: Array<RuntimeEvents['receipts.applied']['ranges']> = [];
    r1.on('receipts.applied', (e) => ranges.push(e.ranges));
    let active = false;
    r1.on('coordinator.active', () => (active = true));
    await c.agent('a1');
    expect(await c.world.run(() => active, 5000)).toBe(true);
    const sent = [];
    for (let i = 0; i < 5; i++) sent.push(await r1.dispatch(workloadMessage('fw1', i)));
    const settled: string[] = [];
    for (const d of sent) void r1.applied(d, { timeoutMs: 5000 }).then(() => settled.push(`ok ${d.seq}`), (e: Error) => settled.push(e.message));
    await c.world.run(() => settled.length === 5, c.world.now + 5000);
    expect(settled).toEqual(sent.map((d) => `ok ${d.seq}`));
    // consecutive seqs travel as runs, never as a single highest mark
    const seen = ranges.flat().filter((g) => g.deviceId === 'fw1');
    expect(seen.reduce((n, g) => n + g.to - g.from + 1, 0)).toBe(5);
    expect(seen[0]!.from).toBe(sent[0]!.seq);
    expect((await r1.status()).devices.find((d) => d.deviceId === 'fw1')?.lag).toBe(0);
    c.killAll();
  });

  it('an applied receipt the agent could not publish is sent again: no seq is left unreported', async () => {
    const world = new World(5);
    const rabbit = new MemoryRabbit('rr');
    const store = createMemoryStore({ now: () => world.now });
    const gate = new Gate('r1');
    const runtime = createRuntime({ devices: [{ id: 'fw1', fencesByEpoch: true }], runtimeId: 'r1', namespace: 'rr', ...runtimeTrust, ports: { broker: rabbit.connect({ schedule: gate.run }), store }, clock: world.clock(gate) });
    await runtime.start();
    const conn = rabbit.connect({ schedule: (f) => f() });
    let refused = 0;
    // the first applied receipt fails to publish (a broker hiccup)
    const broker = new Proxy(conn, {
      get: (target, prop: keyof Broker) =>
        prop === 'publishEvent'
          ? (channel: string, payload: { body?: string }, opts?: object) =>
              channel === 'receipts' && JSON.parse(payload.body ?? '{}').type === 'applied' && refused++ === 0 ? Promise.reject(new Error('channel closed')) : target.publishEvent(channel as never, payload, opts)
          : typeof target[prop] === 'function' ? (target[prop] as (...a: unknown[]) => unknown).bind(target) : target[prop],
    }) as Broker;
    const model = new DeviceModel({ now: () => world.now, fencing: true });
    await startAgent(
      { id: 'a1', devices: [{ id: 'fw1', url: 'http://fw1.sim', fencesByEpoch: true }], namespace: 'rr', ...agentTrust('a1'), heartbeatInterval: 250 },
      { broker, deviceClient: createMemoryDeviceClient(new Map([['fw1', model]])), clock: world.clock(new Gate('a1')), random: world.random, incarnation: 'a1#5' },
    );
    let active = false;
    runtime.on('coordinator.active', () => (active = true));
    expect(await world.run(() => active, 5000)).toBe(true);
    const d = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p/1' });
    let outcome = 'pending';
    void runtime.applied(d, { timeoutMs: 10_000 }).then(() => (outcome = 'applied'), (e: Error) => (outcome = e.message));
    await world.run(() => outcome !== 'pending', world.now + 5000);
    expect(refused).toBe(2);
    expect(outcome).toBe('applied');
    expect(model.applied.map((a) => a.seq)).toEqual([d.seq]);
  });

  it('an agent that dies after applying, before its receipt went out: the next agent reports what it skips, every applied() resolves', async () => {
    const c = simCluster({ seed: 11, devices: 1 });
    const model = c.models.get('fw1')!;
    const r1 = await c.runtime('r1');
    let active: string | null = null;
    r1.on('coordinator.active', (e) => (active = e.assignment.agentId));
    await c.agent('a1');
    expect(await c.world.run(() => active !== null, 5000)).toBe(true);
    await c.agent('a2');
    const first = active!;
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await r1.dispatch(workloadMessage('fw1', i)));
    // the device applied all three; the agent's receipt (flushed every 50 ms) has not gone out
    expect(await c.world.run(() => model.applied.length === 3, c.world.now + 1000)).toBe(true);
    c.kill(first);
    const settled: string[] = [];
    for (const d of sent) void r1.applied(d, { timeoutMs: 20_000 }).then(() => settled.push(`ok ${d.seq}`), (e: Error) => settled.push(e.message));
    await c.world.run(() => settled.length === 3, c.world.now + 20_000);
    expect(active).not.toBe(first);
    expect(settled).toEqual(sent.map((d) => `ok ${d.seq}`));
    expect(model.applied.map((a) => a.seq)).toEqual(sent.map((d) => d.seq)); // skipped, not written twice
    expect((await r1.status()).devices.find((d) => d.deviceId === 'fw1')?.lag).toBe(0);
    c.killAll();
  });
});
