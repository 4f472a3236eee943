// A small baton installation for integration tests: simulated devices, agent processes, a runtime,
// each in a database and a queue namespace of its own, all removed afterwards.
import { checkDevice, staleWrites as staleOf, type DeviceCheck } from '../../src/devices/checker.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { createRuntime, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import type { Runtime, RuntimeEvents } from '../../src/api.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { AMQP_URL, freshDatabase, freshNamespace, until } from './services.ts';
import { agentTrust, runtimeTrust } from './trust.ts';

export { MANAGEMENT_URL } from './preflight.ts';

export interface Cluster {
  db: { url: string };
  namespace: string;
  sims: DeviceSimulator[];
  devices: Array<{ id: string; url: string; fencesByEpoch: boolean }>;
  devicesFile: string;
  agents: Map<string, ChildHandle>;
  runtime(extra?: Partial<RuntimeOptions>): Runtime;
  startAgent(id: string, flags?: string[]): ChildHandle;
  dispose(): Promise<void>;
}

export async function startCluster(o: { devices: number; fencesByEpoch?: boolean }): Promise<Cluster> {
  const db = freshDatabase();
  const ns = freshNamespace();
  const sims: DeviceSimulator[] = [];
  for (let i = 0; i < o.devices; i++) sims.push(await startDeviceSimulator());
  const devices = sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url, fencesByEpoch: o.fencesByEpoch ?? true }));
  const devicesFile = writeDevicesFile(devices);
  const agents = new Map<string, ChildHandle>();
  const runtimes: Runtime[] = [];
  return {
    db,
    namespace: ns.namespace,
    sims,
    devices,
    devicesFile,
    agents,
    runtime(extra = {}) {
      const r = createRuntime({ devices, amqpUrl: AMQP_URL, databaseUrl: db.url, namespace: ns.namespace, ...runtimeTrust, ...extra });
      runtimes.push(r);
      return r;
    },
    startAgent(id, flags = []) {
      const a = spawnAgent({ id, key: agentTrust(id).key, devicesFile, amqpUrl: AMQP_URL, namespace: ns.namespace, extra: flags, logLevel: 'warn' });
      agents.set(id, a);
      return a;
    },
    async dispose() {
      for (const r of runtimes) await r.stop().catch(() => {});
      for (const a of agents.values()) {
        a.kill('SIGCONT');
        a.kill('SIGKILL');
        await a.exited;
      }
      await Promise.all(sims.map((s) => s.close()));
      await ns.drop([...agents.keys()]).catch(() => {});
      await db.drop().catch(() => {});
    },
  };
}

/** Dispatches `count` parent/child messages round-robin over the devices, `concurrency` at a time; returns the seqs per device. */
export async function dispatchLoad(runtime: Runtime, devices: Array<{ id: string }>, count: number, o: { concurrency?: number; onProgress?: (n: number) => void } = {}): Promise<Map<string, number[]>> {
  const seqs = new Map<string, number[]>(devices.map((d) => [d.id, []]));
  const perDevice = new Map<string, number>(devices.map((d) => [d.id, 0]));
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const d = devices[i % devices.length]!;
      const k = perDevice.get(d.id)!;
      perDevice.set(d.id, k + 1);
      const r = await runtime.dispatch(workloadMessage(d.id, k));
      seqs.get(r.deviceId)!.push(r.seq);
      o.onProgress?.(++done);
    }
  };
  await Promise.all(Array.from({ length: o.concurrency ?? 200 }, worker));
  for (const list of seqs.values()) list.sort((a, b) => a - b);
  return seqs;
}

/** Waits until every device applied every seq it was sent, then checks each device's own log. */
export async function awaitAndCheck(c: Cluster, seqs: Map<string, number[]>, ms = 90_000): Promise<DeviceCheck[]> {
  await Promise.all(
    c.sims.map((sim, i) => {
      const want = new Set(seqs.get(c.devices[i]!.id)!);
      const has = () => {
        let n = 0;
        for (const e of sim.applied) if (e.seq !== null && want.has(e.seq)) n++;
        return n >= want.size;
      };
      return until(sim.events, 'applied', has, ms, `${want.size} writes on ${c.devices[i]!.id}`);
    }),
  );
  return c.sims.map((sim, i) => checkDevice(c.devices[i]!.id, sim.applied.map((e) => e.seq), seqs.get(c.devices[i]!.id)!));
}

/** Writes a device accepted from an epoch lower than one it had already accepted. */
export const staleWrites = (sim: DeviceSimulator) => staleOf(sim.applied);

/** Resolves with the `performance.now()` of the first write any device applies under `epoch`. */
export function firstWriteAt(sims: DeviceSimulator[], epoch: number): Promise<number> {
  return new Promise((resolve) => {
    const on = (e: { epoch: number | null }) => {
      if (e.epoch !== epoch) return;
      for (const s of sims) s.events.off('applied', on);
      resolve(performance.now());
    };
    for (const s of sims) s.events.on('applied', on);
  });
}

/** The seqs a device applied, in the order it applied them (its own log). */
export const appliedSeqs = (sim: DeviceSimulator) => sim.applied.filter((e) => e.seq !== null).map((e) => e.seq);

/** Resolves once the runtime hears that the device's line blocked. */
export const blockedLine = (runtime: Runtime, deviceId: string) =>
  new Promise<RuntimeEvents['device.line']>((resolve) => runtime.on('device.line', (e) => e.deviceId === deviceId && e.line?.state === 'blocked' && resolve(e)));
