// Runtimes, agents and devices of the deterministic simulation's kind, for unit tests that script a
// fault by hand: the real runtime, agents and machines over the in-memory broker and store, each
// process behind a gate (killed = no more callbacks, no more store calls), on one simulated clock.
import { startAgent, type AgentHandle } from '../../src/agent/worker.ts';
import { DeviceModel } from '../../src/devices/model.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { DeviceClient, DeviceOutcome, Store } from '../../src/ports.ts';
import { createRuntime, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import { type Runtime } from '../../src/api.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentTrust, runtimeTrust } from './trust.ts';

export interface SimCluster {
  world: World;
  rabbit: MemoryRabbit;
  /** the database every process shares (no gate: what a test reads afterwards) */
  store: Store;
  models: Map<string, DeviceModel>;
  runtime(id: string, extra?: Partial<RuntimeOptions>): Promise<Runtime>;
  agent(id: string): Promise<AgentHandle>;
  kill(id: string): void;
  killAll(): void;
}

/** `storeLatencyMs`: each store call answers that much simulated time later (PostgreSQL round trips); `fences` (default true): the devices refuse stale epochs (then a new agent need not wait out the old lease). */
export function simCluster(o: { seed: number; devices: number; storeLatencyMs?: number; fences?: boolean }): SimCluster {
  const fences = o.fences ?? true;
  const world = new World(o.seed);
  const rabbit = new MemoryRabbit('t');
  const store = createMemoryStore({ now: () => world.now });
  const models = new Map(Array.from({ length: o.devices }, (_, i) => [`fw${i + 1}`, new DeviceModel({ random: world.random, now: () => world.now, fencing: fences })]));
  const memory = createMemoryDeviceClient(models);
  const devices = [...models.keys()].map((id) => ({ id, url: `http://${id}.sim`, fencesByEpoch: fences }));
  const later = <T>(gate: Gate, ms: number, f: () => Promise<T>) => new Promise<T>((resolve, reject) => world.at(world.now + ms, () => void f().then((v) => gate.run(() => resolve(v)), (e) => gate.run(() => reject(e)))));
  const deviceClient = (gate: Gate): DeviceClient => ({
    send: (d, m, epoch) => later<DeviceOutcome>(gate, 1, () => memory.send(d, m, epoch)),
    watermark: (d) => later(gate, 1, () => memory.watermark(d)),
    close: async () => {},
  });
  const storeFor = (gate: Gate): Store =>
    new Proxy(store, {
      get: (target, prop: keyof Store) => {
        const f = target[prop];
        if (typeof f !== 'function') return f;
        return (...args: unknown[]) => {
          if (gate.dead) return Promise.reject(new Error('the process is gone'));
          const call = () => (f as (...a: unknown[]) => Promise<unknown>).apply(target, args);
          return o.storeLatencyMs ? later(gate, o.storeLatencyMs, call) : call();
        };
      },
    });
  const procs = new Map<string, () => void>();
  /** awaits a start while the world runs (a store with latency answers through its timers) */
  const driven = async <T>(p: Promise<T>): Promise<T> => {
    let done = false;
    const watched = p.finally(() => (done = true));
    await world.run(() => done, world.now + 10_000);
    return watched;
  };
  return {
    world,
    rabbit,
    store,
    models,
    async runtime(id, extra = {}) {
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      const r = createRuntime({ devices, runtimeId: id, namespace: 't', ...runtimeTrust, ports: { broker: conn, store: storeFor(gate) }, clock: world.clock(gate), ...extra });
      procs.set(id, () => (gate.kill(), conn.kill()));
      await driven(r.start());
      return r;
    },
    async agent(id) {
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      const handle = await driven(
        startAgent(
          { id, devices, namespace: 't', ...agentTrust(id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
          { broker: conn, deviceClient: deviceClient(gate), clock: world.clock(gate), random: world.random, incarnation: `${id}#${o.seed}` },
        ),
      );
      procs.set(id, () => (gate.kill(), conn.kill()));
      return handle;
    },
    kill: (id) => procs.get(id)!(),
    killAll: () => {
      for (const k of procs.values()) k();
    },
  };
}
