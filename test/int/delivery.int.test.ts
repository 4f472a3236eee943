// The foundation's acceptance run: 10,000 messages over 8 simulated devices through one real agent
// process, checked from each device's own applied log; then the same with one device failing.
import { afterEach, describe, expect, it } from 'vitest';
import { checkDevice } from '../../src/devices/checker.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { type Runtime } from '../../src/api.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { AMQP_URL, freshDatabase, freshNamespace, until } from '../support/services.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

const DEVICES = 8;
const MESSAGES = 10_000;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function setup(agentFlags: string[] = []) {
  const db = freshDatabase();
  const ns = freshNamespace();
  const sims: DeviceSimulator[] = [];
  for (let i = 0; i < DEVICES; i++) sims.push(await startDeviceSimulator());
  const devices = sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url }));
  cleanups.push(db.drop, () => ns.drop(['a1']), async () => void (await Promise.all(sims.map((s) => s.close()))));
  const runtime: Runtime = createRuntime({ devices, amqpUrl: AMQP_URL, databaseUrl: db.url, namespace: ns.namespace, ...runtimeTrust });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const active = runtime.once('coordinator.active');
  const agent: ChildHandle = spawnAgent({ id: 'a1', key: agentTrust('a1').key, devicesFile: writeDevicesFile(devices), amqpUrl: AMQP_URL, namespace: ns.namespace, extra: agentFlags, logLevel: 'warn' });
  cleanups.push(async () => {
    agent.kill('SIGTERM');
    await agent.exited;
  });
  await Promise.race([active, agent.exited.then((c) => Promise.reject(new Error(`agent exited ${c}: ${agent.stderr()}`)))]);
  return { runtime, sims, devices, agent };
}

async function dispatchAll(runtime: Runtime, devices: Array<{ id: string }>) {
  const seqs = new Map<string, number[]>(devices.map((d) => [d.id, []]));
  const results = await Promise.all(
    Array.from({ length: MESSAGES }, (_, i) => {
      const d = devices[i % devices.length]!;
      return runtime.dispatch(workloadMessage(d.id, Math.floor(i / devices.length)));
    }),
  );
  for (const r of results) seqs.get(r.deviceId)!.push(r.seq);
  return seqs;
}

const appliedAll = (sim: DeviceSimulator, n: number, ms = 60_000) => until(sim.events, 'applied', () => sim.applied.length >= n, ms, `${n} writes on ${sim.url}`);

describe('ordered delivery through a real agent process', () => {
  it(`delivers ${MESSAGES} messages over ${DEVICES} devices: per device in order, none missing, none twice`, async () => {
    const { runtime, sims, devices } = await setup();
    const seqs = await dispatchAll(runtime, devices);
    await Promise.all(sims.map((s, i) => appliedAll(s, seqs.get(devices[i]!.id)!.length)));
    for (const [i, sim] of sims.entries()) {
      const check = checkDevice(devices[i]!.id, sim.applied.map((e) => e.seq), seqs.get(devices[i]!.id)!);
      expect(check).toMatchObject({ expected: MESSAGES / DEVICES, applied: MESSAGES / DEVICES, missing: 0, duplicates: 0, outOfOrder: 0 });
      // the device's own view: a child never arrived before its parent
      expect(sim.applied.every((e) => e.epoch === 1)).toBe(true);
    }
  });

  it('holds a failing device line and resumes it in order while the other devices keep going', async () => {
    // prefetch above one device's backlog, so the held line cannot fill the window (see README: limits)
    const { runtime, sims, devices } = await setup(['--prefetch', '2000']);
    const failing = sims[2]!;
    failing.setFaults({ errorRate: 1, errorStatus: 503 });
    let refused = 0;
    failing.events.on('refused', () => refused++);
    const seqs = await dispatchAll(runtime, devices);
    const others = sims.filter((s) => s !== failing);
    await Promise.all(others.map((s) => appliedAll(s, MESSAGES / DEVICES)));
    // every other device finished while this one answered 503 to every attempt
    expect(failing.applied).toHaveLength(0);
    expect(refused).toBeGreaterThan(1);
    failing.setFaults({});
    await appliedAll(failing, MESSAGES / DEVICES);
    for (const [i, sim] of sims.entries()) {
      expect(checkDevice(devices[i]!.id, sim.applied.map((e) => e.seq), seqs.get(devices[i]!.id)!)).toMatchObject({ missing: 0, duplicates: 0, outOfOrder: 0 });
    }
  });
});
