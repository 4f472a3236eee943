// The per-device view over the in-memory adapters: the active agent's lane reports (its heartbeats)
// make devices() and status() say blocked or retrying with the detail, and applied() time out naming
// the seq that holds the line; lag and the age of the oldest unapplied seq move as receipts arrive;
// dead letters are counted; /api/devices serves the view and `baton devices` prints it.
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { DeviceView } from '../../src/api.ts';
import { inspectorPage } from '../../src/inspector/page.ts';
import { createInspectorServer, type InspectorServer } from '../../src/inspector/server.ts';
import type { Clock } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import type { LaneReport } from '../../src/side-channel.ts';
import { devicesTable, fetchDevices } from '../../src/tools/cli/devices.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentKey, seal } from '../../src/trust.ts';
import { captureLogs } from '../support/log-capture.ts';
import { runtimeTrust, signedReceipt, TEST_SECRET } from '../support/trust.ts';

/** A heartbeat of agent `agentId` carrying lane reports, as an agent of the test deployment sends it. */
const heartbeatWith = (agentId: string, beat: number, lanes?: LaneReport[]) =>
  seal(agentKey(TEST_SECRET, agentId), 'heartbeats', agentId, { type: 'heartbeat', agentId, host: 'h', pid: 1, sentAt: 0, beat, incarnation: `${agentId}#1`, ...(lanes ? { lanes } : {}) });

const BLOCKED: LaneReport = { deviceId: 'fw1', state: 'blocked', seq: 2, status: 422, response: 'vlan 4095 is reserved', reason: 'device rejected the message (422)', since: Date.parse('2026-12-03T06:00:00Z') };
const RETRYING: LaneReport = { deviceId: 'fw1', state: 'retrying', seq: 2, attempt: 4, reason: 'connect ECONNREFUSED', since: Date.parse('2026-12-03T06:00:00Z') };

async function leader() {
  const world = new World(7);
  const rabbit = new MemoryRabbit('dv');
  const store = createMemoryStore({ now: () => world.now });
  const gate = new Gate('r1');
  const runtime = createRuntime({ devices: ['fw1', 'fw2'], runtimeId: 'r1', namespace: 'dv', ...runtimeTrust, leaderTtl: 1500, ports: { broker: rabbit.connect({ schedule: gate.run }), store }, clock: world.clock(gate) });
  const agent = rabbit.connect({ schedule: (f) => f() });
  await agent.start();
  await agent.consume(await agent.assertAgentQueue('a1'), () => {}, { prefetch: 100 });
  let beat = 0;
  const heartbeat = async (lanes?: LaneReport[]) => {
    await agent.publishEvent('heartbeats', heartbeatWith('a1', ++beat, lanes));
    await world.run(() => false, world.now + 50);
  };
  await runtime.start();
  await heartbeat();
  await world.run(() => false, world.now + 200);
  let receipts = 0;
  runtime.on('receipts.applied', () => receipts++);
  runtime.on('message.dead-lettered', () => receipts++);
  const receipt = async (r: object) => {
    const before = receipts;
    await agent.publishEvent('receipts', signedReceipt('a1', { epoch: 1, ...r }));
    await world.run(() => receipts > before, world.now + 100);
  };
  const handOut = async (n: number) => {
    for (let i = 1; i <= n; i++) await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/p/${i}` });
  };
  const fw1 = async () => (await runtime.devices()).find((d) => d.deviceId === 'fw1')!;
  /** what applied() of `seq` settles with within `ms` of simulated time */
  const settle = async (seq: number, timeoutMs: number) => {
    let outcome: string | null = null;
    runtime.applied({ deviceId: 'fw1', seq }, { timeoutMs }).then(() => (outcome = 'applied'), (e: Error) => (outcome = e.message));
    await world.run(() => outcome !== null, world.now + timeoutMs + 100);
    return outcome;
  };
  return { world, runtime, heartbeat, receipt, handOut, fw1, settle };
}

describe('the per-device view', () => {
  it('a blocked report: devices() and status() say blocked with the seq, status and answer; applied() behind it names them and what frees the line', async () => {
    const c = await leader();
    await c.handOut(4);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }] });
    await c.heartbeat([BLOCKED]);
    const v = await c.fw1();
    expect(v).toMatchObject({ state: 'blocked', agentId: 'a1', watermark: 1, lag: 3, nextSeq: 5, blocked: { seq: 2, status: 422, response: 'vlan 4095 is reserved' }, retrying: null });
    expect(v.lastError).toMatchObject({ seq: 2 });
    expect(v.lastError!.text).toContain('refused (status 422)');
    expect((await c.runtime.devices()).find((d) => d.deviceId === 'fw2')).toMatchObject({ state: 'idle', lag: null, oldestUnappliedMs: null, agentId: 'a1' });
    expect((await c.runtime.status()).devices.find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'blocked', lag: 3 });
    const text = await c.settle(4, 1000);
    expect(text).toContain('device fw1 has not reported seq 4 applied within 1000 ms');
    expect(text).toContain('blocked at seq 2');
    expect(text).toContain('status 422');
    expect(text).toContain('vlan 4095 is reserved');
    expect(text).toContain('baton unblock fw1 --retry sends seq 2 again first');
    expect(text).toContain('baton unblock fw1 --skip');
    // seq 1 was applied before the line stopped: nothing holds it
    expect(await c.settle(1, 1000)).toBe('applied');
    expect(devicesTable([v]).join('\n')).toMatch(/fw1\s+blocked\s+5\s+1\s+3 .*seq 2 refused \(status 422: vlan 4095 is reserved\).*baton unblock fw1 --retry .* or --skip/);
  });

  it('a retrying report: retrying with the seq, attempt and reason; the line flows again once the heartbeat reports nothing', async () => {
    const c = await leader();
    await c.handOut(3);
    await c.heartbeat([RETRYING]);
    expect(await c.fw1()).toMatchObject({ state: 'retrying', retrying: { seq: 2, attempt: 4, reason: 'connect ECONNREFUSED' }, blocked: null });
    const text = await c.settle(3, 500);
    expect(text).toContain('agent a1 is retrying seq 2 on it (attempt 4: connect ECONNREFUSED)');
    expect(text).toContain('seq 3 stays queued behind it');
    await c.heartbeat();
    expect(await c.fw1()).toMatchObject({ state: 'flowing', retrying: null });
    // with nothing held, today's words
    expect(await c.settle(3, 500)).toBe('device fw1 has not reported seq 3 applied within 500 ms; it stays queued and will be delivered (see baton status)');
  });

  it('counts what is parked per device while no agent is there to send to', async () => {
    const world = new World(8);
    const gate = new Gate('r1');
    const runtime = createRuntime({ devices: ['fw1', 'fw2'], runtimeId: 'r1', namespace: 'dv', ...runtimeTrust, leaderTtl: 1500, ports: { broker: new MemoryRabbit('dv').connect({ schedule: gate.run }), store: createMemoryStore({ now: () => world.now }) }, clock: world.clock(gate) });
    await runtime.start();
    await world.run(() => false, world.now + 200);
    let stored = 0;
    for (const deviceId of ['fw1', 'fw1', 'fw2']) void runtime.dispatch({ deviceId, method: 'PUT', path: '/p' }).then(() => stored++);
    await world.run(() => stored === 3, world.now + 5000);
    expect(stored).toBe(3);
    const parked = Object.fromEntries((await runtime.devices()).map((d) => [d.deviceId, d.parked]));
    expect(parked).toEqual({ fw1: 2, fw2: 1 });
  });

  it('lag and the age of the oldest unapplied seq move as receipts arrive; idle once all are settled; dead letters counted', async () => {
    const c = await leader();
    await c.handOut(2);
    await c.world.run(() => false, c.world.now + 1000);
    await c.handOut(1); // seq 3, a second later
    const before = await c.fw1();
    expect(before).toMatchObject({ state: 'flowing', lag: 3, watermark: 0, lastAppliedAt: null, deadLetters: 0 });
    expect(before.oldestUnappliedMs).toBeGreaterThanOrEqual(1000);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 2 }] });
    const mid = await c.fw1();
    expect(mid).toMatchObject({ lag: 1, watermark: 2 });
    expect(mid.oldestUnappliedMs).toBeLessThan(before.oldestUnappliedMs!);
    expect(mid.lastAppliedAt).not.toBeNull();
    expect(mid.lastAppliedAt).toBeGreaterThan(0);
    const entry = { deviceId: 'fw1', seq: 3, epoch: 1, reason: 'device rejected the message (400)', status: 400, response: 'no', payload: '{}' };
    await c.receipt({ type: 'dead-letter', anomaly: false, entry });
    expect(await c.fw1()).toMatchObject({ state: 'idle', lag: 0, oldestUnappliedMs: null, watermark: 3, deadLetters: 1, lastError: { seq: 3, text: 'seq 3 dead-lettered: device rejected the message (400)' } });
  });
});

describe('/api/devices and baton devices', () => {
  const still: Clock = { now: () => Date.now(), monotonic: () => performance.now(), setTimeout: () => ({ cancel() {} }) };
  const servers: InspectorServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.stop();
  });
  const view: DeviceView = { deviceId: 'fw1', state: 'blocked', blocked: { seq: 2, status: 422, response: 'no', reason: 'rejected', since: 0 }, retrying: null, nextSeq: 5, watermark: 1, lag: 3, oldestUnappliedMs: 12_000, parked: 0, deadLetters: 0, lastError: null, lastAppliedAt: null, agentId: 'a1' };
  const serve = async (token?: string) => {
    const server = createInspectorServer({ port: 0, clock: still, status: async () => ({}) as never, devices: async () => [view], metrics: new Metrics(), logger: captureLogs().logger, ...(token ? { token } : {}) });
    const url = await server.start();
    servers.push(server);
    return url;
  };

  it('serves the runtime\'s devices() as JSON, and baton devices reads it (with the token when one is set)', async () => {
    const url = await serve();
    const res = await fetch(new URL('api/devices', url));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual([view]);
    expect(await fetchDevices(url)).toEqual([view]);
    const guarded = await serve('s3cret');
    await expect(fetchDevices(guarded)).rejects.toThrow(/wants a token: give it with --token or BATON_INSPECTOR_TOKEN/);
    expect(await fetchDevices(guarded, 's3cret')).toEqual([view]);
  });

  it('the page draws its devices table from /api/devices, and its script parses', () => {
    const page = inspectorPage();
    const script = /<script>([\s\S]*)<\/script>/.exec(page)![1]!;
    expect(() => new Function(script)).not.toThrow();
    expect(script).toContain("fetch('/api/devices' + q)");
    expect(page).toContain('<th>state</th>');
  });

  it('baton devices names the URL when nothing answers', async () => {
    const url = await serve();
    await servers.pop()!.stop();
    await expect(fetchDevices(url)).rejects.toThrow(`nothing answers at ${url}api/devices`);
    await expect(fetchDevices(url)).rejects.toThrow(/is a runtime running with its inspector on\?/);
  });
});
