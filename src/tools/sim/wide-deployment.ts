/**
 * The wide simulation's world and deployment: the seeded world, one in-memory broker and database,
 * the devices, and how runtimes and agents are started, each behind its own gate, broker
 * connection (SimBroker) and, for a runtime, store handle with its faults (sim-store.ts). The
 * deployment's shape (runtimes, agents, dispatches in flight, leaderTtl) is drawn by the seed
 * unless the options fix it; nothing is started here.
 */
import { agentCredential } from '../../trust.ts';
import { startAgent, type AgentHandle } from '../../agent/worker.ts';
import { DeviceModel } from '../../devices/model.ts';
import { MemoryRabbit } from '../../adapters/memory/broker.ts';
import { createMemoryStore } from '../../adapters/memory/store.ts';
import type { Assignment, Store } from '../../ports.ts';
import { createRuntime } from '../../runtime/runtime.ts';
import { type Runtime } from '../../api.ts';
import { SimBroker } from './sim-broker.ts';
import { simDeviceClient, type SimDevice } from './sim-devices.ts';
import { simStore, StoreFaults } from './sim-store.ts';
import type { SimOptions } from './types.ts';
import type { SwitchPhaseName } from './wide-faults.ts';
import { Gate, World, seededRandom, simSecret } from './world.ts';
import type { LineOrder } from '../../ports.ts';

export interface SimAgent {
  id: string;
  gate: Gate;
  broker: SimBroker;
  handle: AgentHandle | null;
}

export interface SimRuntime {
  id: string;
  gate: Gate;
  broker: SimBroker;
  faults: StoreFaults;
  runtime: Runtime;
  leading: boolean;
}

export type PhaseListener = (phase: SwitchPhaseName, a: Assignment) => void;

/** A lease grant an agent took: when (ms, and its world stamp), and the line orders it put in force there. */
export interface GrantTaken {
  at: number;
  stamp: number;
  lines: Record<string, LineOrder>;
}

/** A planned handover whose old agent gave its lease back (what wide-check.ts holds it to). */
export interface PlannedRelease {
  runtime: string;
  switchId: string;
  agentId: string;
  /** the epoch it gave back */
  epoch: number;
  /** when the runtime took its answer (simulated ms): the agent wrote nothing under that epoch after it */
  at: number;
  completed: boolean;
}

export class WideDeployment {
  readonly world: World;
  readonly rnd: () => number;
  readonly trace: string[] = [];
  readonly rabbit = new MemoryRabbit('sim');
  /** the one database every runtime shares (no gate, no faults: what the checks read) */
  readonly store: Store;
  readonly devices: SimDevice[];
  /** runtimes and agents to start with */
  readonly runtimeCount: number;
  readonly agentCount: number;
  /** dispatch() calls the host keeps in flight per device */
  readonly inFlight: number;
  readonly leaderTtl: number;
  readonly agents = new Map<string, SimAgent>();
  readonly runtimes = new Map<string, SimRuntime>();
  /** switches started, by any runtime */
  switches = 0;
  /** planned handovers (wide-operator.ts): asked, fallen back to fencing, and those whose old agent gave its lease back */
  readonly planned = { asked: 0, fallbacks: 0, released: [] as PlannedRelease[] };
  /** called on every switch phase of any runtime (faults that wait for a phase) */
  readonly phaseListeners: PhaseListener[] = [];
  /** the line operator's own random source (wide-line-operator.ts), apart from the world's: the deployment and the faults a seed draws stay as they were */
  readonly opsRnd: () => number;
  /** whether, and how soon, the line operator skips a seq it just retried (its own source: opsRnd's draws, hence the seeds kept in scripts/sim-regressions.json, stay as they were) */
  readonly midRetryRnd: () => number;
  /** an operator acts on device lines in this run (pauses, refusals, unblocks): the agents then block a line at a refusal */
  readonly lineOps: boolean;
  /** each PostgreSQL call of a runtime answers this much later, ms (drawn in half the operator's seeds: the races of a line's release need time to happen) */
  readonly storeLatencyMs: number;
  /** the latency applies once the world runs (the first runtimes start before it does) */
  latencyOn = false;
  /** per agent, the grants it took (the checker's view of when an order took effect there) */
  readonly grantsTaken = new Map<string, GrantTaken[]>();
  /** every config message a runtime published to an agent queue: its device, seq and the world stamp of the call */
  readonly published: Array<{ deviceId: string; seq: number; stamp: number }> = [];
  /** the pauses the operator saw done, per device: from (stamp) until it asked to resume (stamp, or none yet) */
  readonly pauses: Array<{ deviceId: string; from: number; to: number | null }> = [];
  private readonly deviceConfigs: Array<{ id: string; url: string; fencesByEpoch: boolean }>;
  private agentSerial = 0;
  private incarnations = 0;
  private runtimeSerial = 0;

  constructor(private readonly o: SimOptions) {
    const world = (this.world = new World(o.seed));
    const rnd = (this.rnd = world.random);
    this.store = createMemoryStore({ now: () => world.now });
    // the deployment, drawn by the seed (tests may fix it)
    this.runtimeCount = o.runtimes ?? (rnd() < 0.5 ? 2 : 3);
    this.agentCount = o.agents ?? 1 + Math.floor(rnd() * 3);
    this.inFlight = o.inFlight ?? 1 + Math.floor(rnd() * 3);
    this.leaderTtl = o.leaderTtl ?? (rnd() < 0.5 ? 1500 : 3000);
    this.opsRnd = seededRandom((o.seed ^ 0x5eed0b5) >>> 0);
    this.midRetryRnd = seededRandom((o.seed ^ 0x5c1b7e7) >>> 0);
    const drawn = this.opsRnd() < 0.6;
    this.lineOps = o.lineOps ?? (o.operator !== false && drawn);
    this.storeLatencyMs = this.lineOps && this.opsRnd() < 0.5 ? 1 + Math.floor(this.opsRnd() * 3) : 0;
    this.devices = Array.from({ length: o.devices ?? 3 }, (_, i) => ({
      id: `fw${i + 1}`,
      fences: i % 2 === 0,
      model: new DeviceModel({ random: rnd, now: () => world.now, fencing: i % 2 === 0 }),
      calls: [],
      attempts: [],
      slowUntil: -1,
      errorsUntil: -1,
      rejectsUntil: -1,
      writes: [],
      refusals: [],
    }));
    this.deviceConfigs = this.devices.map((d) => ({ id: d.id, url: `http://${d.id}.sim`, fencesByEpoch: d.fences }));
    this.note(`deployment: ${this.runtimeCount} runtimes (leaderTtl ${this.leaderTtl} ms), ${this.agentCount} agent(s), ${this.devices.length} devices, up to ${this.inFlight} dispatch(es) in flight per device${this.lineOps ? '; an operator acts on device lines (agents block a line at a refusal)' : ''}${this.storeLatencyMs ? `; PostgreSQL answers in ${this.storeLatencyMs} ms` : ''}`);
  }

  readonly note = (s: string): void => void this.trace.push(`${String(this.world.now).padStart(6)}ms ${s}`);

  liveAgents(): SimAgent[] {
    return [...this.agents.values()].filter((a) => !a.gate.dead);
  }

  liveRuntimes(): SimRuntime[] {
    return [...this.runtimes.values()].filter((r) => !r.gate.dead);
  }

  /** the live runtimes that say they lead (from their leader.won / leader.lost events) */
  leaders(): SimRuntime[] {
    return this.liveRuntimes().filter((r) => r.leading);
  }

  /** Starts an agent, under a new id unless one is given (an agent back under its id); each start is a new incarnation. */
  async startAgent(id = `a${++this.agentSerial}`): Promise<void> {
    const { world, o } = this;
    const gate = new Gate(id);
    const broker = new SimBroker(this.rabbit, gate, world);
    const entry: SimAgent = { id, gate, broker, handle: null };
    this.agents.set(id, entry);
    const process = `${id}#${++this.incarnations}`;
    entry.handle = await startAgent(
      { id, devices: this.deviceConfigs, namespace: 'sim', key: agentCredential(simSecret(o.seed), id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500, onPermanent: this.lineOps ? 'block' : 'skip' },
      { broker, deviceClient: simDeviceClient(this.devices, gate, world, process), clock: world.clock(gate), random: this.rnd, incarnation: `${id}#${o.seed}#${this.incarnations}` },
    );
    const taken: GrantTaken[] = [];
    this.grantsTaken.set(process, taken);
    entry.handle.events.on('lease', (e: { lines: Record<string, LineOrder> }) => taken.push({ at: world.now, stamp: world.stamp(), lines: e.lines }));
    this.note(`agent ${id} started`);
  }

  /** Starts a runtime: the one database, its own gate, broker connection and store handle (with its faults). */
  async startRuntime(): Promise<void> {
    const { world, o, note } = this;
    const id = `r${++this.runtimeSerial}`;
    const gate = new Gate(id);
    const broker = new SimBroker(this.rabbit, gate, world);
    const faults = new StoreFaults(world);
    const publish = broker.publish.bind(broker);
    broker.publish = (queue, m, opts) => (this.published.push({ deviceId: m.deviceId, seq: m.seq, stamp: world.stamp() }), publish(queue, m, opts));
    let base: Store = this.store;
    if (o.plant === 'drop-parked-row') base = plantDropParkedRow(this.store);
    const runtime = createRuntime({ devices: this.deviceConfigs, runtimeId: id, namespace: 'sim', secret: simSecret(o.seed), leaderTtl: this.leaderTtl, ports: { broker, store: simStore(base, gate, world, faults, () => (this.latencyOn ? this.storeLatencyMs : 0)) }, clock: world.clock(gate) });
    const entry: SimRuntime = { id, gate, broker, faults, runtime, leading: false };
    runtime.on('leader.won', () => ((entry.leading = true), note(`runtime ${id} leads`)));
    runtime.on('leader.lost', (e) => ((entry.leading = false), note(`runtime ${id} no longer leads (${e.holder ?? 'no holder known'})`)));
    runtime.on('agent.dead', (e) => note(`runtime ${id}: agent ${e.agentId} dead (${e.reason})`));
    runtime.on('switch.started', (e) => (this.switches++, note(`${id}: switch to epoch ${e.assignment.epoch} started (${e.reason})`)));
    runtime.on('switch.phase', (e) => {
      note(`${id}: switch phase ${e.phase}${e.phase === 'draining' ? ` (to ${e.assignment.agentId})` : ''}`);
      for (const l of [...this.phaseListeners]) l(e.phase as SwitchPhaseName, e.assignment);
    });
    runtime.on('switch.completed', (e) => {
      note(`${id}: switch completed: ${e.assignment.agentId} active, epoch ${e.assignment.epoch}`);
      for (const p of this.planned.released) if (p.switchId === e.assignment.switchId) p.completed = true;
    });
    runtime.on('handover.released', (e) => {
      this.planned.released.push({ runtime: id, switchId: e.assignment.switchId!, agentId: e.agentId, epoch: e.assignment.epoch - 1, at: world.now, completed: false });
      note(`${id}: planned handover: ${e.agentId} gave back the lease of epoch ${e.assignment.epoch - 1}`);
    });
    runtime.on('handover.fallback', (e) => (this.planned.fallbacks++, note(`${id}: planned handover falls back to fencing: ${e.agentId}: ${e.why}`)));
    this.runtimes.set(id, entry);
    await runtime.start();
  }

  /** Ends every process (the run is over). */
  killAll(): void {
    for (const r of this.runtimes.values()) if (!r.gate.dead) r.gate.kill();
    for (const a of this.agents.values()) a.gate.kill();
  }
}

/** The planted bug of the narrow model, for the wide one: the oldest parked row is deleted once, never sent. */
function plantDropParkedRow(store: Store): Store {
  let dropped = false;
  return {
    ...store,
    async fetchParked(limit, filter) {
      const rows = await store.fetchParked(limit, filter);
      if (dropped || rows.length === 0) return rows;
      dropped = true;
      await store.deleteParked([rows[0]!.id]);
      return rows.slice(1);
    },
  };
}
