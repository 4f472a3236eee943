/**
 * The narrow simulation model (the default of simulate()): one runtime and two agents over the
 * in-memory Broker and Store, a fixed load sent through the leader, up to two faults drawn by the
 * seed (an agent killed or stopped, the runtime crashed, device errors), then the invariants of
 * DESIGN.md §8 checked from the devices' own applied logs.
 *
 * Every part draws from the world's one random source in the order the run reaches it; the order
 * of the parts below (deploy, start, load, faults, run, check) is what keeps a seed's trace.
 */
import { agentCredential } from '../../trust.ts';
import { startAgent, type AgentHandle } from '../../agent/worker.ts';
import { checkDevice, staleWrites } from '../../devices/checker.ts';
import { MemoryRabbit, type MemoryConnection } from '../../adapters/memory/broker.ts';
import { createMemoryStore } from '../../adapters/memory/store.ts';
import { DeviceModel } from '../../devices/model.ts';
import { createMemoryDeviceClient } from '../../adapters/memory/device.ts';
import type { DeviceClient, DeviceOutcome, Store } from '../../ports.ts';
import { createRuntime } from '../../runtime/runtime.ts';
import { type Runtime } from '../../api.ts';
import { workloadMessage } from '../workload.ts';
import type { PlannedFault, PlantedBug, SimOptions, SimResult } from './types.ts';
import { Gate, World, simSecret } from './world.ts';

interface NarrowDevice {
  id: string;
  fences: boolean;
  model: DeviceModel;
}

/** The run's world and its processes: one database (store), one broker, gated runtimes and agents. */
interface Narrow {
  world: World;
  trace: string[];
  note(s: string): void;
  store: Store;
  devices: NarrowDevice[];
  agents: Map<string, { gate: Gate; conn: MemoryConnection; handle: AgentHandle }>;
  runtimes: Map<string, { gate: Gate; conn: MemoryConnection; runtime: Runtime; leading: boolean }>;
  switches: number;
  startSimAgent(): Promise<string>;
  startSimRuntime(): Promise<string>;
}

/** What the load has sent: the seqs accepted per device, and how many messages so far. */
interface NarrowLoad {
  total: number;
  accepted: Map<string, number[]>;
  sent(): number;
}

export async function simulateNarrow(o: SimOptions): Promise<SimResult> {
  const n = deployNarrow(o);
  const { world } = n;
  // start: one runtime, two agents
  await n.startSimRuntime();
  await n.startSimAgent();
  await n.startSimAgent();
  const active = () => n.store.getAssignment();
  const started = await world.run(() => [...n.runtimes.values()].some((r) => r.leading), 5000);
  await world.run(() => false, world.now + 1500); // the agents heartbeat and one is chosen
  if (!started || !(await active())) return { seed: o.seed, ok: false, violations: ['no runtime led or no agent became active at start'], trace: n.trace, stats: { accepted: 0, applied: 0, switches: n.switches, simulatedMs: world.now } };

  const load = startNarrowLoad(n, o.messages ?? 120);
  // faults, while the load runs
  const loadTime = (load.total / n.devices.length) * 20;
  const plan = o.faults === false ? [] : o.faults === true || o.faults === undefined ? drawFaults(world.random) : o.faults;
  const start = world.now;
  for (const f of plan) world.at(start + Math.floor(f.at * loadTime), () => void applyNarrowFault(n, f));

  const settled = () => load.sent() >= load.total && n.devices.every((d) => load.accepted.get(d.id)!.every((seq) => d.model.applied.some((a) => a.seq === seq)));
  await world.run(settled, world.now + 120_000);

  const violations = checkNarrow(n, load);
  for (const r of n.runtimes.values()) if (!r.gate.dead) r.gate.kill();
  for (const a of n.agents.values()) a.gate.kill();
  return {
    seed: o.seed,
    ok: violations.length === 0,
    violations,
    trace: n.trace,
    stats: { accepted: load.sent(), applied: n.devices.reduce((t, d) => t + d.model.applied.length, 0), switches: n.switches, simulatedMs: world.now },
  };
}

/** The world, the devices and how runtimes and agents are started (none is yet). */
function deployNarrow(o: SimOptions): Narrow {
  const world = new World(o.seed);
  const rnd = world.random;
  const trace: string[] = [];
  const note = (s: string) => trace.push(`${String(world.now).padStart(6)}ms ${s}`);
  const rabbit = new MemoryRabbit('sim');
  const store = createMemoryStore({ now: () => world.now });
  // half the devices refuse stale epochs; all report their watermark
  const devices = Array.from({ length: o.devices ?? 3 }, (_, i) => ({ id: `fw${i + 1}`, fences: i % 2 === 0, model: new DeviceModel({ random: rnd, now: () => world.now, fencing: i % 2 === 0 }) }));
  const memory = createMemoryDeviceClient(new Map(devices.map((d) => [d.id, d.model])));
  const deviceConfigs = devices.map((d) => ({ id: d.id, url: `http://${d.id}.sim`, fencesByEpoch: d.fences }));
  const planted = { dropped: false };
  let agentCount = 0;
  let runtimeCount = 0;

  const n: Narrow = {
    world,
    trace,
    note,
    store,
    devices,
    agents: new Map(),
    runtimes: new Map(),
    switches: 0,
    startSimAgent: async () => {
      const id = `a${++agentCount}`;
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      const handle = await startAgent(
        { id, devices: deviceConfigs, namespace: 'sim', key: agentCredential(simSecret(o.seed), id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
        { broker: conn, deviceClient: narrowDeviceClient(world, memory, gate), clock: world.clock(gate), random: rnd, incarnation: `${id}#${o.seed}` },
      );
      n.agents.set(id, { gate, conn, handle });
      note(`agent ${id} started`);
      return id;
    },
    // runtimes share the database (store); each has its own gate, broker connection and store handle
    startSimRuntime: async () => {
      const id = `r${++runtimeCount}`;
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      const runtime = createRuntime({ devices: deviceConfigs, runtimeId: id, namespace: 'sim', secret: simSecret(o.seed), leaderTtl: 1500, ports: { broker: conn, store: narrowStore(store, gate, o.plant, planted) }, clock: world.clock(gate) });
      const entry = { gate, conn, runtime, leading: false };
      runtime.on('leader.won', () => ((entry.leading = true), note(`runtime ${id} leads`)));
      runtime.on('leader.lost', () => (entry.leading = false));
      runtime.on('agent.dead', (e) => note(`runtime ${id}: agent ${e.agentId} dead (${e.reason})`));
      runtime.on('switch.started', (e) => (n.switches++, note(`switch to epoch ${e.assignment.epoch} started (${e.reason})`)));
      runtime.on('switch.phase', (e) => note(`switch phase ${e.phase}${e.phase === 'draining' ? ` (to ${e.assignment.agentId})` : ''}`));
      runtime.on('switch.completed', (e) => note(`switch completed: ${e.assignment.agentId} active, epoch ${e.assignment.epoch}`));
      n.runtimes.set(id, entry);
      await runtime.start();
      return id;
    },
  };
  return n;
}

/** A device answers after 1-3 ms; its answer reaches the agent through the agent's gate. */
function narrowDeviceClient(world: World, memory: DeviceClient, gate: Gate): DeviceClient {
  return {
    send: (d, m, epoch) =>
      new Promise<DeviceOutcome>((resolve) => {
        world.at(world.now + 1 + Math.floor(world.random() * 3), () => void memory.send(d, m, epoch).then((out) => gate.run(() => resolve(out))));
      }),
    watermark: (d) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(d).then((w) => gate.run(() => resolve(w))))),
    close: async () => {},
  };
}

/** A runtime's handle on the shared store: refused once its process is gone; the planted bug, once per run. */
function narrowStore(store: Store, gate: Gate, plant: PlantedBug | undefined, planted: { dropped: boolean }): Store {
  return new Proxy(store, {
    get(target, prop: keyof Store) {
      const f = target[prop] as (...a: unknown[]) => Promise<unknown>;
      if (typeof f !== 'function') return f;
      return async (...args: unknown[]) => {
        if (gate.dead) throw new Error('the runtime process is gone');
        if (plant === 'drop-parked-row' && prop === 'fetchParked' && !planted.dropped) {
          const rows = (await f.apply(target, args)) as Array<{ id: number }>;
          if (rows.length >= 1) {
            planted.dropped = true; // the planted bug: the oldest parked row is deleted, never sent
            await target.deleteParked([rows[0]!.id]);
            return rows.slice(1);
          }
          return rows;
        }
        return f.apply(target, args);
      };
    },
  });
}

/** The load: per device in order, through the leading runtime; what a dying runtime refused is sent again. */
function startNarrowLoad(n: Narrow, total: number): NarrowLoad {
  const { world, devices } = n;
  const accepted = new Map<string, number[]>(devices.map((d) => [d.id, []]));
  const next = new Map<string, number>(devices.map((d) => [d.id, 0]));
  const busy = new Set<string>();
  let sent = 0;
  const tick = () => {
    for (const d of devices) {
      const k = next.get(d.id)!;
      if (busy.has(d.id) || k >= total / devices.length) continue;
      const leader = [...n.runtimes.values()].find((r) => r.leading && !r.gate.dead);
      if (!leader) continue;
      busy.add(d.id);
      leader.runtime.dispatch(workloadMessage(d.id, k)).then(
        (r) => {
          accepted.get(d.id)!.push(r.seq);
          next.set(d.id, k + 1);
          sent++;
          busy.delete(d.id);
        },
        () => busy.delete(d.id),
      );
    }
    if (sent < total) world.at(world.now + 20, tick);
  };
  world.at(world.now, tick);
  return { total, accepted, sent: () => sent };
}

const KINDS: PlannedFault['kind'][] = ['kill-agent', 'stop-agent', 'crash-runtime', 'device-errors'];
/** The faults a seed draws: up to two, kills and stops more often than crashes and device errors. */
function drawFaults(rnd: () => number): PlannedFault[] {
  const count = Math.floor(rnd() * 3);
  return Array.from({ length: count }, (_, i) => {
    const at = (i + rnd()) / Math.max(1, count);
    const k = rnd();
    return { at, kind: k < 0.35 ? KINDS[0]! : k < 0.6 ? KINDS[1]! : k < 0.8 ? KINDS[2]! : KINDS[3]!, size: rnd() };
  });
}

/** One fault, now: on the active agent, the leading runtime or a device (the narrow model ignores `target` and `when`). */
async function applyNarrowFault(n: Narrow, f: PlannedFault): Promise<void> {
  const { world, note } = n;
  const a = await n.store.getAssignment();
  const victim = a ? n.agents.get(a.agentId) : undefined;
  if (f.kind === 'kill-agent' && victim && !victim.gate.dead) {
    note(`fault: kill agent ${a!.agentId}`);
    victim.gate.kill();
    victim.conn.kill();
    world.at(world.now + 200 + Math.floor(f.size * 2000), () => void n.startSimAgent());
  } else if (f.kind === 'stop-agent' && victim && !victim.gate.dead && !victim.gate.paused) {
    const ms = 1000 + Math.floor(f.size * 4000);
    note(`fault: stop agent ${a!.agentId} for ${ms} ms`);
    victim.gate.pause();
    world.at(world.now + ms, () => (note(`fault: resume agent ${a!.agentId}`), victim.gate.resume()));
  } else if (f.kind === 'crash-runtime') {
    const leader = [...n.runtimes.entries()].find(([, r]) => r.leading && !r.gate.dead);
    if (!leader) return;
    note(`fault: crash runtime ${leader[0]}`);
    leader[1].gate.kill();
    leader[1].conn.kill();
    leader[1].leading = false;
    world.at(world.now + 100 + Math.floor(f.size * 1000), () => void n.startSimRuntime());
  } else if (f.kind === 'device-errors') {
    const dev = n.devices[Math.floor(f.size * n.devices.length) % n.devices.length]!;
    note(`fault: ${dev.id} fails half its writes for 1 s`);
    dev.model.errorRate = 0.5;
    world.at(world.now + 1000, () => (dev.model.errorRate = 0));
  }
}

/** The invariants, from each device's applied log against the seqs the load was given. */
function checkNarrow(n: Narrow, load: NarrowLoad): string[] {
  const violations: string[] = [];
  for (const d of n.devices) {
    const c = checkDevice(d.id, d.model.applied.map((a) => a.seq), load.accepted.get(d.id)!);
    if (c.missing) violations.push(`${d.id}: ${c.missing} accepted message(s) never applied (lost)`);
    if (c.outOfOrder) violations.push(`${d.id}: ${c.outOfOrder} write(s) out of order`);
    if (c.duplicates) violations.push(`${d.id}: ${c.duplicates} duplicate write(s) although the device reports its watermark`);
    const stale = staleWrites(d.model.applied);
    if (stale) violations.push(`${d.id}: ${stale} write(s) accepted from a stale epoch`);
  }
  if (load.sent() < load.total) violations.push(`only ${load.sent()} of ${load.total} messages were accepted`);
  return violations;
}
