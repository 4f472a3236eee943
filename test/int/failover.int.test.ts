// Failover with real RabbitMQ, PostgreSQL and agent processes, thousands of messages in flight,
// checked from each device's own applied log.
import { afterEach, describe, expect, it } from 'vitest';
import { runtimeDefaults } from '../../src/config.ts';
import { awaitAndCheck, dispatchLoad, firstWriteAt, MANAGEMENT_URL, staleWrites, startCluster, type Cluster } from '../support/cluster.ts';
import { management, requireItem } from '../support/preflight.ts';

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.dispose();
  cluster = null;
});

const totals = (checks: Array<{ missing: number; duplicates: number; outOfOrder: number }>) =>
  checks.reduce((t, c) => ({ missing: t.missing + c.missing, duplicates: t.duplicates + c.duplicates, outOfOrder: t.outOfOrder + c.outOfOrder }), { missing: 0, duplicates: 0, outOfOrder: 0 });

describe('failover', () => {
  it('the active agent killed with SIGKILL mid-stream: seen as killed (no consumer), not as hung; the next agent delivers; nothing lost or reordered', async () => {
    const c = (cluster = await startCluster({ devices: 4 }));
    const runtime = c.runtime();
    await runtime.start();
    c.startAgent('a1');
    const first = await runtime.ready();
    expect(first.agentId).toBe('a1');
    c.startAgent('a2');
    await new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));

    let killedAt = 0;
    let switched: Promise<number> | null = null;
    const completed = runtime.once('switch.completed');
    const seqs = await dispatchLoad(runtime, c.devices, 4000, {
      concurrency: 50,
      onProgress: (n) => {
        if (n !== 1500) return;
        switched = firstWriteAt(c.sims, 2);
        killedAt = performance.now();
        c.agents.get('a1')!.kill('SIGKILL');
      },
    });
    const done = await completed;
    expect(done.assignment).toMatchObject({ agentId: 'a2', epoch: 2, phase: 'normal', lock: 0, previousAgent: 'a1' });
    const resumedMs = (await switched!) - killedAt;
    console.log(`kill → first delivery by the next agent: ${resumedMs.toFixed(0)} ms`);
    // how fast is the benchmarks' business (`baton bench failover-kill`); what is checked here is that
    // the death was seen on the queue (its consumer gone) and not by missed heartbeats, which would
    // take heartbeatTimeout + hungTimeout on their own
    expect(resumedMs).toBeLessThan(runtimeDefaults.heartbeatTimeout + runtimeDefaults.hungTimeout);
    const checks = await awaitAndCheck(c, seqs);
    expect(totals(checks)).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    const s = await runtime.status();
    expect(s.switches).toMatchObject([{ fromAgent: 'a1', toAgent: 'a2', epoch: 2, phase: 'normal', reason: expect.stringMatching(/agent a1 (killed|no-consumer)/) }]);
  });

  it('the active agent stopped with SIGSTOP, switched away from, then SIGCONT: zero stale writes, zero lost', async () => {
    await requireItem(management);
    const c = (cluster = await startCluster({ devices: 4 }));
    const runtime = c.runtime({ managementUrl: MANAGEMENT_URL });
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    c.startAgent('a2');
    await new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));

    const completed = runtime.once('switch.completed');
    const dead = runtime.once('agent.dead');
    let stoppedAt = 0;
    const seqs = await dispatchLoad(runtime, c.devices, 4000, {
      concurrency: 50,
      onProgress: (n) => {
        if (n !== 1500) return;
        stoppedAt = performance.now();
        c.agents.get('a1')!.kill('SIGSTOP');
      },
    });
    expect(await dead).toMatchObject({ agentId: 'a1', reason: 'hung' });
    await completed;
    console.log(`stop → switch completed: ${(performance.now() - stoppedAt).toFixed(0)} ms`);
    // the resumed agent gets its chance to write (it must not): it is heard from again
    const back = new Promise<void>((resolve) => runtime.on('agent.alive', (e) => e.agentId === 'a1' && resolve()));
    c.agents.get('a1')!.kill('SIGCONT');
    const checks = await awaitAndCheck(c, seqs);
    expect(totals(checks)).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    await back;
    for (const sim of c.sims) {
      expect(staleWrites(sim)).toBe(0); // accepted from a lower epoch
      // refused: at most the one request per device that was already past its lease check when the
      // process stopped (the device's epoch check is the last guard); a lapsed lease stops the rest
      expect(sim.fencedWrites).toBeLessThanOrEqual(1);
    }
  });

  it('two runtimes see the same death: exactly one switch; the standby takes over when the leader dies', async () => {
    const c = (cluster = await startCluster({ devices: 2 }));
    const r1 = c.runtime({ leaderTtl: 1000 });
    await r1.start();
    const r2 = c.runtime({ leaderTtl: 1000 });
    await r2.start();
    expect((await r1.status()).leading).toBe(true);
    expect((await r2.status()).leading).toBe(false);
    await expect(r2.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p0' })).rejects.toMatchObject({ code: 'not-leader', details: { leader: expect.any(String) } });
    c.startAgent('a1');
    await r1.ready();
    c.startAgent('a2');
    await new Promise<void>((resolve) => r2.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));
    const seqs1 = await dispatchLoad(r1, c.devices, 500);
    const bothSawIt = Promise.all([r1.once('agent.dead'), r2.once('agent.dead')]);
    const completed = r1.once('switch.completed');
    c.agents.get('a1')!.kill('SIGKILL');
    await bothSawIt;
    await completed;
    expect((await r1.status()).switches).toHaveLength(1);

    // the leader goes away; the standby leads within a few seconds and goes on from the store
    const won = r2.once('leader.won');
    const t0 = performance.now();
    await r1.stop();
    await won;
    console.log(`leader stopped → standby leads: ${(performance.now() - t0).toFixed(0)} ms`);
    await r2.ready({ timeoutMs: 10_000 });
    const seqs2 = await dispatchLoad(r2, c.devices, 500);
    const all = new Map([...seqs1].map(([d, s]) => [d, [...s, ...seqs2.get(d)!]]));
    expect(totals(await awaitAndCheck(c, all))).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    expect((await r2.status()).switches).toHaveLength(1);
  });

  it('no healthy agent for a while: messages are parked, then delivered in order when one registers', async () => {
    const c = (cluster = await startCluster({ devices: 3 }));
    const runtime = c.runtime();
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    const before = await dispatchLoad(runtime, c.devices, 600);
    const awaiting = new Promise<void>((resolve) => runtime.on('switch.phase', (e) => e.phase === 'awaiting-candidate' && resolve()));
    c.agents.get('a1')!.kill('SIGKILL');
    await awaiting;
    const during = await dispatchLoad(runtime, c.devices, 1500);
    const status = await runtime.status();
    expect(status.parked).toBeGreaterThanOrEqual(1500);
    expect(status.assignment).toMatchObject({ lock: 1, phase: 'switching' });
    const completed = runtime.once('switch.completed');
    c.startAgent('a2');
    expect((await completed).assignment.agentId).toBe('a2');
    const all = new Map([...before].map(([d, s]) => [d, [...s, ...during.get(d)!]]));
    expect(totals(await awaitAndCheck(c, all))).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
    expect((await runtime.status()).parked).toBe(0);
  });

  it.each([
    ['client-side move', undefined],
    ['shovel', MANAGEMENT_URL],
  ])('a deep queue (50,000 messages) is moved in order (%s)', async (_, managementUrl) => {
    if (managementUrl) await requireItem(management);
    const c = (cluster = await startCluster({ devices: 4 }));
    const runtime = c.runtime(managementUrl ? { managementUrl } : {});
    await runtime.start();
    c.startAgent('a1', ['--prefetch', '100']);
    await runtime.ready();
    c.startAgent('a2');
    await new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));
    // the devices hang: a1 (alive, heartbeating) holds its prefetch and takes nothing more, so the queue grows
    for (const sim of c.sims) sim.setFaults({ hang: true });
    const seqs = await dispatchLoad(runtime, c.devices, 50_000, { concurrency: 500 });
    expect((await runtime.status()).queueDepth).toBeGreaterThanOrEqual(49_000);
    const completed = runtime.once('switch.completed');
    c.agents.get('a1')!.kill('SIGKILL');
    for (const sim of c.sims) sim.setFaults({});
    await completed;
    const [sw] = (await runtime.status()).switches;
    const moveMs = sw!.replayingAt!.getTime() - sw!.drainingAt!.getTime();
    console.log(`moved ${sw!.moved} messages in ${moveMs} ms (${managementUrl ? 'shovel' : 'client-side'})`);
    expect(sw!.moved).toBeGreaterThanOrEqual(49_000);
    expect(totals(await awaitAndCheck(c, seqs, 240_000))).toEqual({ missing: 0, duplicates: 0, outOfOrder: 0 });
  }, 300_000);
});
