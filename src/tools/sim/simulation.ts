/**
 * One deterministic simulation run: the real runtime, actors, machines and agents over the
 * in-memory Broker and Store, simulated devices and a simulated clock, all driven from one seeded
 * world. Faults (agent killed or hung, runtime crashed, device errors) are injected by probability;
 * the invariants of DESIGN.md §8 are checked from the devices' own applied logs. This is the
 * narrow model; `model: 'wide'` runs the wide one (wide.ts: more processes, many more faults,
 * liveness after healing).
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
import { simulateWide } from './wide.ts';
import type { WideFault, WideFaultKind } from './wide-faults.ts';
import { Gate, World, simSecret } from './world.ts';

/** Bugs a test can plant to show the simulation finds them (injected through ports, never in the product). */
export type PlantedBug = 'drop-parked-row';

/**
 * One fault: when (a share of the load's duration, 0..1) and what; `size` (0..1) scales its length.
 * The narrow model knows kill-agent, stop-agent, crash-runtime and device-errors (and ignores
 * `target` and `when`); the wide model knows every kind (wide-faults.ts).
 */
export type PlannedFault = WideFault;
export type { WideFaultKind };

/** `narrow`: the original fault model (one runtime, two agents, four fault kinds); `wide`: wide.ts. */
export type SimModel = 'narrow' | 'wide';

export interface SimOptions {
  seed: number;
  /** the fault model (default narrow) */
  model?: SimModel;
  messages?: number;
  devices?: number;
  /** wide model: runtimes from the start (default: 2 or 3, drawn by the seed) */
  runtimes?: number;
  /** wide model: agents from the start (default: 1 to 3, drawn by the seed) */
  agents?: number;
  /** wide model: dispatch() calls in flight per device (default: 1 to 3, drawn by the seed) */
  inFlight?: number;
  /** wide model: the runtimes' leaderTtl (default: 1500 or 3000, drawn by the seed) */
  leaderTtl?: number;
  /** true (default): faults drawn from the seed; false: none; a list: exactly these */
  faults?: boolean | PlannedFault[];
  plant?: PlantedBug;
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

export interface SimResult {
  seed: number;
  ok: boolean;
  violations: string[];
  trace: string[];
  stats: { accepted: number; applied: number; switches: number; simulatedMs: number };
}

export async function simulate(o: SimOptions): Promise<SimResult> {
  return o.model === 'wide' ? simulateWide(o) : simulateNarrow(o);
}

async function simulateNarrow(o: SimOptions): Promise<SimResult> {
  const world = new World(o.seed);
  const rnd = world.random;
  const trace: string[] = [];
  const note = (s: string) => trace.push(`${String(world.now).padStart(6)}ms ${s}`);
  const rabbit = new MemoryRabbit('sim');
  const store = createMemoryStore({ now: () => world.now });
  // half the devices refuse stale epochs; all report their watermark
  const devices = Array.from({ length: o.devices ?? 3 }, (_, i) => ({ id: `fw${i + 1}`, fences: i % 2 === 0, model: new DeviceModel({ random: rnd, now: () => world.now, fencing: i % 2 === 0 }) }));
  const memory = createMemoryDeviceClient(new Map(devices.map((d) => [d.id, d.model])));

  // a device answers after 1-3 ms; its answer reaches the agent through the agent's gate
  const deviceClient = (gate: Gate): DeviceClient => ({
    send: (d, m, epoch) =>
      new Promise<DeviceOutcome>((resolve) => {
        world.at(world.now + 1 + Math.floor(rnd() * 3), () => void memory.send(d, m, epoch).then((out) => gate.run(() => resolve(out))));
      }),
    watermark: (d) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(d).then((w) => gate.run(() => resolve(w))))),
    close: async () => {},
  });
  const deviceConfigs = devices.map((d) => ({ id: d.id, url: `http://${d.id}.sim`, fencesByEpoch: d.fences }));

  // agents
  const agents = new Map<string, { gate: Gate; conn: MemoryConnection; handle: AgentHandle }>();
  let agentCount = 0;
  const startSimAgent = async () => {
    const id = `a${++agentCount}`;
    const gate = new Gate(id);
    const conn = rabbit.connect({ schedule: gate.run });
    const handle = await startAgent(
      { id, devices: deviceConfigs, namespace: 'sim', key: agentCredential(simSecret(o.seed), id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
      { broker: conn, deviceClient: deviceClient(gate), clock: world.clock(gate), random: rnd, incarnation: `${id}#${o.seed}` },
    );
    agents.set(id, { gate, conn, handle });
    note(`agent ${id} started`);
    return id;
  };

  // runtimes share the database (store); each has its own gate, broker connection and store handle
  const runtimes = new Map<string, { gate: Gate; conn: MemoryConnection; runtime: Runtime; leading: boolean }>();
  let runtimeCount = 0;
  let switches = 0;
  let droppedOnce = false;
  const storeFor = (gate: Gate): Store =>
    new Proxy(store, {
      get(target, prop: keyof Store) {
        const f = target[prop] as (...a: unknown[]) => Promise<unknown>;
        if (typeof f !== 'function') return f;
        return async (...args: unknown[]) => {
          if (gate.dead) throw new Error('the runtime process is gone');
          if (o.plant === 'drop-parked-row' && prop === 'fetchParked' && !droppedOnce) {
            const rows = (await f.apply(target, args)) as Array<{ id: number }>;
            if (rows.length >= 1) {
              droppedOnce = true; // the planted bug: the oldest parked row is deleted, never sent
              await target.deleteParked([rows[0]!.id]);
              return rows.slice(1);
            }
            return rows;
          }
          return f.apply(target, args);
        };
      },
    });
  const startSimRuntime = async () => {
    const id = `r${++runtimeCount}`;
    const gate = new Gate(id);
    const conn = rabbit.connect({ schedule: gate.run });
    const runtime = createRuntime({ devices: deviceConfigs, runtimeId: id, namespace: 'sim', secret: simSecret(o.seed), leaderTtl: 1500, ports: { broker: conn, store: storeFor(gate) }, clock: world.clock(gate) });
    const entry = { gate, conn, runtime, leading: false };
    runtime.on('leader.won', () => ((entry.leading = true), note(`runtime ${id} leads`)));
    runtime.on('leader.lost', () => (entry.leading = false));
    runtime.on('agent.dead', (e) => note(`runtime ${id}: agent ${e.agentId} dead (${e.reason})`));
    runtime.on('switch.started', (e) => (switches++, note(`switch to epoch ${e.assignment.epoch} started (${e.reason})`)));
    runtime.on('switch.phase', (e) => note(`switch phase ${e.phase}${e.phase === 'draining' ? ` (to ${e.assignment.agentId})` : ''}`));
    runtime.on('switch.completed', (e) => note(`switch completed: ${e.assignment.agentId} active, epoch ${e.assignment.epoch}`));
    runtimes.set(id, entry);
    await runtime.start();
    return id;
  };

  // start: one runtime, two agents
  await startSimRuntime();
  await startSimAgent();
  await startSimAgent();
  const active = () => store.getAssignment();
  const started = await world.run(() => [...runtimes.values()].some((r) => r.leading), 5000);
  await world.run(() => false, world.now + 1500); // the agents heartbeat and one is chosen
  if (!started || !(await active())) return { seed: o.seed, ok: false, violations: ['no runtime led or no agent became active at start'], trace, stats: { accepted: 0, applied: 0, switches, simulatedMs: world.now } };

  // the load: per device in order, through the leading runtime; what a dying runtime refused is sent again
  const total = o.messages ?? 120;
  const accepted = new Map<string, number[]>(devices.map((d) => [d.id, []]));
  const next = new Map<string, number>(devices.map((d) => [d.id, 0]));
  const busy = new Set<string>();
  let sent = 0;
  const tick = () => {
    for (const d of devices) {
      const k = next.get(d.id)!;
      if (busy.has(d.id) || k >= total / devices.length) continue;
      const leader = [...runtimes.values()].find((r) => r.leading && !r.gate.dead);
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

  // faults, while the load runs
  const loadTime = (total / devices.length) * 20;
  const plan = o.faults === false ? [] : o.faults === true || o.faults === undefined ? drawFaults(rnd) : o.faults;
  const start = world.now;
  for (const f of plan) {
    world.at(start + Math.floor(f.at * loadTime), () => {
      void (async () => {
        const a = await active();
        const victim = a ? agents.get(a.agentId) : undefined;
        if (f.kind === 'kill-agent' && victim && !victim.gate.dead) {
          note(`fault: kill agent ${a!.agentId}`);
          victim.gate.kill();
          victim.conn.kill();
          world.at(world.now + 200 + Math.floor(f.size * 2000), () => void startSimAgent());
        } else if (f.kind === 'stop-agent' && victim && !victim.gate.dead && !victim.gate.paused) {
          const ms = 1000 + Math.floor(f.size * 4000);
          note(`fault: stop agent ${a!.agentId} for ${ms} ms`);
          victim.gate.pause();
          world.at(world.now + ms, () => (note(`fault: resume agent ${a!.agentId}`), victim.gate.resume()));
        } else if (f.kind === 'crash-runtime') {
          const leader = [...runtimes.entries()].find(([, r]) => r.leading && !r.gate.dead);
          if (!leader) return;
          note(`fault: crash runtime ${leader[0]}`);
          leader[1].gate.kill();
          leader[1].conn.kill();
          leader[1].leading = false;
          world.at(world.now + 100 + Math.floor(f.size * 1000), () => void startSimRuntime());
        } else if (f.kind === 'device-errors') {
          const dev = devices[Math.floor(f.size * devices.length) % devices.length]!;
          note(`fault: ${dev.id} fails half its writes for 1 s`);
          dev.model.errorRate = 0.5;
          world.at(world.now + 1000, () => (dev.model.errorRate = 0));
        }
      })();
    });
  }

  const settled = () => sent >= total && devices.every((d) => accepted.get(d.id)!.every((seq) => d.model.applied.some((a) => a.seq === seq)));
  await world.run(settled, world.now + 120_000);

  // the invariants
  const violations: string[] = [];
  for (const d of devices) {
    const c = checkDevice(d.id, d.model.applied.map((a) => a.seq), accepted.get(d.id)!);
    if (c.missing) violations.push(`${d.id}: ${c.missing} accepted message(s) never applied (lost)`);
    if (c.outOfOrder) violations.push(`${d.id}: ${c.outOfOrder} write(s) out of order`);
    if (c.duplicates) violations.push(`${d.id}: ${c.duplicates} duplicate write(s) although the device reports its watermark`);
    const stale = staleWrites(d.model.applied);
    if (stale) violations.push(`${d.id}: ${stale} write(s) accepted from a stale epoch`);
  }
  if (sent < total) violations.push(`only ${sent} of ${total} messages were accepted`);
  for (const r of runtimes.values()) if (!r.gate.dead) r.gate.kill();
  for (const a of agents.values()) a.gate.kill();
  return {
    seed: o.seed,
    ok: violations.length === 0,
    violations,
    trace,
    stats: { accepted: sent, applied: devices.reduce((t, d) => t + d.model.applied.length, 0), switches, simulatedMs: world.now },
  };
}
