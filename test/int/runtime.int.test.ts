// The runtime against the real PostgreSQL and RabbitMQ, with an in-process agent and simulated devices.
import amqp from 'amqplib';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { createOrmStore } from '../../src/adapters/orm/store.ts';
import { silentLogger } from '../../src/logger.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { AMQP_URL, freshDatabase, freshNamespace, until } from '../support/services.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function setup(devices = 2) {
  const db = freshDatabase();
  const ns = freshNamespace();
  const sims: DeviceSimulator[] = [];
  for (let i = 0; i < devices; i++) sims.push(await startDeviceSimulator());
  const deviceConfigs = sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url }));
  cleanups.push(db.drop, () => ns.drop(['a1', 'a2']), async () => void (await Promise.all(sims.map((s) => s.close()))));
  const runtime = (extra = {}) => {
    const r = createRuntime({ devices: deviceConfigs, amqpUrl: AMQP_URL, databaseUrl: db.url, namespace: ns.namespace, ...runtimeTrust, ...extra });
    cleanups.push(() => r.stop());
    return r;
  };
  const agent = async (id = 'a1', extra = {}) => {
    const a = await startAgent({ id, devices: deviceConfigs, amqpUrl: AMQP_URL, namespace: ns.namespace, ...agentTrust(id), ...extra });
    cleanups.push(() => a.stop());
    return a;
  };
  return { db, ns, sims, deviceConfigs, runtime, agent };
}

const allApplied = (sim: DeviceSimulator, n: number) => until(sim.events, 'applied', () => sim.applied.length >= n, 30_000, `${n} writes applied`);

describe('runtime (real services)', () => {
  it('chooses the first healthy agent, records it, and delivers in order', async () => {
    const { runtime, agent, sims, db } = await setup();
    const r = runtime();
    await r.start();
    const active = r.once('coordinator.active');
    await agent('a1');
    expect((await active).assignment).toMatchObject({ agentId: 'a1', epoch: 1, lock: 0 });
    const results = await Promise.all([0, 1, 2].map((i) => r.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/policies/p${i}`, body: { i } })));
    expect(results.map((x) => x.seq)).toEqual([1, 2, 3]);
    await allApplied(sims[0]!, 3);
    expect(sims[0]!.applied.map((e) => e.seq)).toEqual([1, 2, 3]);
    // written under the lease's epoch, the one source of the fencing epoch
    expect(sims[0]!.applied.map((e) => e.epoch)).toEqual([1, 1, 1]);
    const s = await r.status();
    expect(s.assignment?.agentId).toBe('a1');
    expect(s.agents).toMatchObject([{ agentId: 'a1', state: 'active' }]);
    const store = await createOrmStore({ databaseUrl: db.url, logger: silentLogger() });
    expect(await store.getAssignment()).toMatchObject({ agentId: 'a1', topic: expect.stringMatching(/\.agent\.a1$/) });
    await store.close();
  });

  it('parks messages while no agent exists, then replays them in order when one registers', async () => {
    const { runtime, agent, sims } = await setup();
    const r = runtime();
    await r.start();
    const parked = await Promise.all([0, 1, 2, 3].map((i) => r.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/policies/p${i}` })));
    expect(parked.map((p) => p.seq)).toEqual([1, 2, 3, 4]);
    expect((await r.status()).parked).toBe(4);
    expect(sims[0]!.applied).toHaveLength(0);
    const replayed = r.once('replay.completed');
    await agent('a1');
    expect(await replayed).toEqual({ agentId: 'a1', replayed: 4 });
    await allApplied(sims[0]!, 4);
    expect(sims[0]!.applied.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect((await r.status()).parked).toBe(0);
  });

  it('rejects bad input with invalid-message and stores and sends nothing', async () => {
    const { runtime, agent, sims } = await setup();
    const r = runtime({ maxMessageBytes: 100 });
    await r.start();
    // subscribed before the agent starts: coordinator.active may fire before agent() returns
    const active = r.once('coordinator.active');
    await agent('a1');
    await active;
    const bad = [
      { method: 'PUT', path: '/p' },
      { deviceId: 'nope', method: 'PUT', path: '/p' },
      { deviceId: 'fw1', method: 'PUT', path: '/p', body: { f: () => 1 } },
      { deviceId: 'fw1', method: 'PUT', path: '/p', body: 'x'.repeat(200) },
    ];
    for (const b of bad) await expect(r.dispatch(b as never)).rejects.toMatchObject({ code: 'invalid-message' });
    const s = await r.status();
    expect(s.devices).toEqual([]);
    expect(s.parked).toBe(0);
    expect(s.queueDepth ?? 0).toBe(0);
    expect(sims[0]!.applied).toHaveLength(0);
  });

  it('never reuses a seq after a restart', async () => {
    const { runtime } = await setup();
    const r1 = runtime({ seqBlockSize: 100 });
    await r1.start();
    const a = await r1.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1' });
    await r1.stop();
    const r2 = runtime({ seqBlockSize: 100 });
    await r2.start();
    const b = await r2.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p2' });
    expect(a.seq).toBe(1);
    expect(b.seq).toBeGreaterThan(a.seq);
  });

  it('stop() settles every accepted message, then refuses new ones with runtime-stopped', async () => {
    const { runtime, agent } = await setup();
    const r = runtime();
    await r.start();
    await agent('a1');
    const settled = Promise.allSettled(Array.from({ length: 300 }, (_, i) => r.dispatch({ deviceId: 'fw2', method: 'PUT', path: `/policies/p${i}` })));
    await r.stop();
    expect((await settled).every((s) => s.status === 'fulfilled')).toBe(true);
    await expect(r.dispatch({ deviceId: 'fw2', method: 'PUT', path: '/p/x' })).rejects.toMatchObject({ code: 'runtime-stopped' });
  });

  it('dispatch() before start() is refused with runtime-not-started', async () => {
    const { runtime } = await setup();
    await expect(runtime().dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p/x' })).rejects.toMatchObject({ code: 'runtime-not-started' });
  });

  it('fails start() naming an unreachable database and how to start it', async () => {
    const { runtime } = await setup();
    const r = runtime({ databaseUrl: 'postgresql://postgres:pw@127.0.0.1:1/baton' });
    const err = await r.start().then(() => null, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'database-unavailable' });
    expect(err!.message).toMatch(/127\.0\.0\.1:1/);
    expect(err!.message).toMatch(/pg_ctlcluster/);
    expect(err!.message).not.toMatch(/:pw@/);
  });

  it('dead-letters a message the device rejects, with the device answer, and reports it', async () => {
    const { runtime, agent, db } = await setup();
    const r = runtime();
    await r.start();
    await agent('a1');
    const dead = r.once('message.dead-lettered');
    await r.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/missing/rules/r1' });
    expect(await dead).toMatchObject({ deviceId: 'fw1', seq: 1, agentId: 'a1', reason: 'device answered 422' });
    const store = await createOrmStore({ databaseUrl: db.url, logger: silentLogger() });
    expect(await store.listDeadLetters()).toMatchObject([{ deviceId: 'fw1', seq: 1, status: 422, response: expect.stringMatching(/parent/) }]);
    await store.close();
  });

  it('dead-letters a malformed message found on the agent queue, with the reason, and goes on', async () => {
    const { runtime, agent, db, sims } = await setup();
    const r = runtime();
    await r.start();
    const a = await agent('a1');
    await r.ready();
    const dead = r.once('message.dead-lettered');
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    ch.sendToQueue(a.queue, Buffer.from('{"deviceId": "fw1", "seq": "one"'), { persistent: true });
    await ch.waitForConfirms();
    await conn.close();
    expect(await dead).toMatchObject({ agentId: 'a1', reason: expect.stringMatching(/malformed message: body is not JSON/) });
    await r.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1' });
    await allApplied(sims[0]!, 1);
    const store = await createOrmStore({ databaseUrl: db.url, logger: silentLogger() });
    expect((await store.listDeadLetters())[0]).toMatchObject({ payload: '{"deviceId": "fw1", "seq": "one"' });
    await store.close();
  });

  it('keeps each device watermark from the agents receipts', async () => {
    const { runtime, agent } = await setup();
    const r = runtime();
    await r.start();
    await agent('a1');
    const stored = new Promise<void>((resolve) => r.on('watermarks.stored', (e) => e.marks.some((m) => m.deviceId === 'fw2' && m.seq === 5) && resolve()));
    for (let i = 0; i < 5; i++) await r.dispatch({ deviceId: 'fw2', method: 'PUT', path: `/policies/p${i}` });
    await stored;
    const wm = (await r.status()).devices.find((d) => d.deviceId === 'fw2')?.watermark;
    expect(wm).toBe(5);
  });
});
