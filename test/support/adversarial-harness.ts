// The adversarial reviews' harness: the real runtime, machines and agents over the in-memory broker
// and store, on a simulated clock, every process behind a gate; each runtime's database connection
// can hang, commit without answering, or hold named statements until `release` runs them (late).
import { startAgent } from '../../src/agent/worker.ts';
import { DeviceModel } from '../../src/devices/model.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { DeviceClient, DeviceConfig, Store } from '../../src/ports.ts';
import { createRuntime, type RuntimeOptions } from '../../src/runtime/runtime.ts';
import { type Runtime } from '../../src/api.ts';
import { SimBroker } from '../../src/tools/sim/sim-broker.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentTrust, runtimeTrust } from './trust.ts';

export interface Proc {
  id: string;
  gate: Gate;
  broker: SimBroker;
  /** this process's database connection: `hang` = no call is answered; those named in `commits` run (commit) all the same, the others never reach the database */
  db: { hang: boolean; commits: Set<string>; holds: Set<string>; held: Array<(() => void) & { prop?: string }> };
}

export interface RuntimeProc extends Proc {
  runtime: Runtime;
  leading: boolean;
  trace: string[];
}

export function harness(o: {
  seed: number;
  devices?: Array<Partial<DeviceConfig> & { id: string }>;
  deviceDelayMs?: number;
  /** every store call is answered this much later (PostgreSQL round trips) */
  storeLatencyMs?: number;
  /** the device applies this write, but its answer is lost on the way: the agent sees its request time out */
  loseAnswer?: (m: { deviceId: string; seq: number; path: string }) => boolean;
}) {
  const world = new World(o.seed);
  const rabbit = new MemoryRabbit('adv');
  const store = createMemoryStore({ now: () => world.now });
  const devices: DeviceConfig[] = (o.devices ?? [{ id: 'fw1' }]).map((d) => ({ url: `http://${d.id}.sim`, fencesByEpoch: true, ...d }) as DeviceConfig);
  const models = new Map(devices.map((d) => [d.id, new DeviceModel({ random: world.random, now: () => world.now, fencing: d.fencesByEpoch !== false })]));
  const memory = createMemoryDeviceClient(models);
  const trace: string[] = [];
  const note = (s: string) => trace.push(`${String(world.now).padStart(6)}ms ${s}`);

  const storeFor = (gate: Gate, db: Proc['db']): Store =>
    new Proxy(store, {
      get(target, prop: keyof Store) {
        const f = target[prop] as (...a: unknown[]) => Promise<unknown>;
        if (typeof f !== 'function') return f;
        return (...args: unknown[]) =>
          new Promise((resolve, reject) => {
            if (gate.dead) return reject(new Error('the process is gone'));
            if (db.holds.has(prop)) {
              // the statement reaches the database later (the process stopped as it sent it, a retransmit): run by `held`
              db.held.push(Object.assign(() => void f.apply(target, args).then((v) => gate.run(() => resolve(v)), (e) => gate.run(() => reject(e))), { prop }));
              return;
            }
            if (db.hang) {
              if (db.commits.has(prop)) void f.apply(target, args).catch(() => {}); // the statement ran; its answer never comes
              return;
            }
            const p = f.apply(target, args);
            const lat = o.storeLatencyMs ?? 0;
            const answer = (fn: () => void) => (lat ? world.at(world.now + lat, () => gate.run(fn)) : gate.run(fn));
            p.then((v) => answer(() => resolve(v)), (e) => answer(() => reject(e)));
          });
      },
    });

  const procs = new Map<string, Proc>();
  const runtimes = new Map<string, RuntimeProc>();
  const drive = async <T>(p: Promise<T>, ms = 10_000): Promise<T> => {
    let done = false;
    const watched = p.finally(() => (done = true));
    await world.run(() => done, world.now + ms);
    return watched;
  };

  return {
    world,
    rabbit,
    store,
    models,
    trace,
    note,
    runtimes,
    procs,
    async runtime(id: string, extra: Partial<RuntimeOptions> = {}): Promise<RuntimeProc> {
      const gate = new Gate(id);
      const broker = new SimBroker(rabbit, gate, world);
      const db = { hang: false, commits: new Set<string>(), holds: new Set<string>(), held: [] as Proc["db"]["held"] };
      const runtime = createRuntime({ devices, runtimeId: id, namespace: 'adv', ...runtimeTrust, leaderTtl: 1500, ports: { broker, store: storeFor(gate, db) }, clock: world.clock(gate), ...extra });
      const p: RuntimeProc = { id, gate, broker, db, runtime, leading: false, trace };
      const move = broker.move.bind(broker);
      broker.move = (from, to) => move(from, to).then((n) => (note(`${id}: moved ${n} message(s) from ${from} to ${to}${p.leading ? '' : ' (not leading)'}`), n));
      runtime.on('leader.won', () => ((p.leading = true), note(`${id} leads`)));
      runtime.on('leader.lost', () => ((p.leading = false), note(`${id} no longer leads`)));
      runtime.on('agent.dead', (e) => note(`${id}: agent ${e.agentId} dead (${e.reason})`));
      runtime.on('switch.started', (e) => note(`${id}: switch to epoch ${e.assignment.epoch} started (${e.reason})`));
      runtime.on('switch.phase', (e) => note(`${id}: switch phase ${e.phase} (agent ${e.assignment.agentId}, epoch ${e.assignment.epoch})`));
      runtime.on('switch.completed', (e) => note(`${id}: switch completed: ${e.assignment.agentId} active, epoch ${e.assignment.epoch}`));
      runtime.on('replay.completed', (e) => note(`${id}: replayed ${e.replayed} parked row(s) to ${e.agentId}`));
      procs.set(id, p);
      runtimes.set(id, p);
      await drive(runtime.start());
      return p;
    },
    async agent(id: string): Promise<Proc> {
      const gate = new Gate(id);
      const broker = new SimBroker(rabbit, gate, world);
      const delayMs = o.deviceDelayMs ?? 1;
      const client: DeviceClient = {
        send: (d, m, epoch) =>
          new Promise((resolve) =>
            world.at(world.now + 1, () => {
              // applied on arrival; the answer reaches the agent through its gate after `delayMs`
              const lost = o.loseAnswer?.(m) === true;
              void memory.send(d, m, epoch).then((out) => {
                if (lost) note(`${d.id} applied seq ${m.seq} (${m.path}) but its answer is lost: ${id} times out`);
                const answer = lost ? ({ kind: 'transient', status: null, reason: `device ${d.id} unreachable: timed out` } as const) : out;
                world.at(world.now + (lost ? 5000 : delayMs), () => gate.run(() => resolve(answer)));
              });
            }),
          ),
        watermark: (d) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(d).then((w) => gate.run(() => resolve(w))))),
        close: async () => {},
      };
      const p: Proc = { id, gate, broker, db: { hang: false, commits: new Set<string>(), holds: new Set<string>(), held: [] } };
      procs.set(id, p);
      await drive(
        startAgent(
          { id, devices, namespace: 'adv', ...agentTrust(id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
          { broker, deviceClient: client, clock: world.clock(gate), random: world.random, incarnation: `${id}#${o.seed}` },
        ),
      );
      note(`agent ${id} started`);
      return p;
    },
    kill(id: string) {
      const p = procs.get(id)!;
      p.gate.kill();
      p.broker.kill();
      if (runtimes.has(id)) runtimes.get(id)!.leading = false;
      note(`killed ${id}`);
    },
    leader(): RuntimeProc | undefined {
      return [...runtimes.values()].find((r) => r.leading && !r.gate.dead);
    },
    run: (done: () => boolean, ms: number) => world.run(done, world.now + ms),
    applied: (deviceId: string) => models.get(deviceId)!.applied,
    /** dispatch through a runtime; the outcome is recorded when it comes */
    dispatch(r: RuntimeProc, m: Parameters<Runtime['dispatch']>[0]) {
      const out: { state: 'pending' | 'accepted' | 'refused'; seq?: number; error?: string } = { state: 'pending' };
      r.gate.run(() =>
        void r.runtime.dispatch(m).then(
          (v) => r.gate.run(() => ((out.state = 'accepted'), (out.seq = v.seq), note(`${r.id}: dispatch ${m.path} accepted as seq ${v.seq}`))),
          (e: Error) => r.gate.run(() => ((out.state = 'refused'), (out.error = e.message), note(`${r.id}: dispatch ${m.path} refused: ${e.message}`))),
        ),
      );
      return out;
    },
  };
}

/** runs the statements held for `prop`, in the order they were sent */
export function release(p: Proc, prop: string): number {
  const mine = p.db.held.filter((f) => f.prop === prop);
  p.db.held = p.db.held.filter((f) => f.prop !== prop);
  for (const f of mine) f();
  return mine.length;
}
