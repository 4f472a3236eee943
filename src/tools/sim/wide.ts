/**
 * The wide simulation (`baton sim --model wide`): the real runtimes, agents and machines over the
 * in-memory services, with the faults nobody scripts (wide-faults.ts) and a checker that compares
 * what the host was told with what the devices did (wide-check.ts), then asks for liveness once
 * the faults heal.
 *
 * The deployment is drawn by the seed: two or three runtimes from the start, one to three agents,
 * one to three dispatches in flight per device. The host sends each device's messages to any
 * runtime that says it leads (from its `leader.won` / `leader.lost` events); a refusal is sent
 * again (elsewhere, for `not-leader`); a call unanswered for 3 s is in doubt and sent again. The
 * leadership TTL is 1.5 s (as in the narrow model) or 3 s (the default), drawn by the seed.
 *
 * Liveness: within LIVENESS_MS of the load's end and the last fault's healing, exactly one runtime
 * leads, its coordinator is `normal` and its dispatcher `sending`, the recorded assignment has
 * lock 0, nothing is parked, no agent queue holds a message (ready or unacked), every accepted
 * message is applied or dead-lettered, every dispatch() to a live runtime has answered; then the
 * leader's `applied()` of every accepted seq settles as the devices say.
 */
import { agentCredential } from '../../trust.ts';
import { startAgent, type AgentHandle } from '../../agent/worker.ts';
import { DeviceModel } from '../../devices/model.ts';
import { MemoryRabbit } from '../../adapters/memory/broker.ts';
import { createMemoryStore } from '../../adapters/memory/store.ts';
import type { Assignment, Store } from '../../ports.ts';
import { createRuntime } from '../../runtime/runtime.ts';
import { type Runtime } from '../../api.ts';
import { workloadMessage } from '../workload.ts';
import { SimBroker } from './sim-broker.ts';
import { simDeviceClient, type SimDevice } from './sim-devices.ts';
import { simStore, StoreFaults } from './sim-store.ts';
import { checkAppliedAnswers, checkCalls, type AppliedAnswer, type HostCall } from './wide-check.ts';
import { drawWideFaults, type SwitchPhaseName, type WideFault } from './wide-faults.ts';
import { Gate, World, simSecret } from './world.ts';
import type { SimOptions, SimResult } from './types.ts';

/** the liveness bound, simulated ms after the load ended and the last fault healed */
export const LIVENESS_MS = 20_000;
/** a host gives up waiting for dispatch() after this long and sends the message again (elsewhere) */
const HOST_TIMEOUT_MS = 3000;

interface SimAgent {
  id: string;
  gate: Gate;
  broker: SimBroker;
  handle: AgentHandle | null;
}

interface SimRuntime {
  id: string;
  gate: Gate;
  broker: SimBroker;
  faults: StoreFaults;
  runtime: Runtime;
  leading: boolean;
}

export async function simulateWide(o: SimOptions): Promise<SimResult> {
  const world = new World(o.seed);
  const rnd = world.random;
  const trace: string[] = [];
  const note = (s: string) => trace.push(`${String(world.now).padStart(6)}ms ${s}`);
  const rabbit = new MemoryRabbit('sim');
  const store = createMemoryStore({ now: () => world.now });

  // the deployment, drawn by the seed (tests may fix it)
  const runtimeCount = o.runtimes ?? (rnd() < 0.5 ? 2 : 3);
  const agentCount = o.agents ?? 1 + Math.floor(rnd() * 3);
  const inFlight = o.inFlight ?? 1 + Math.floor(rnd() * 3);
  const leaderTtl = o.leaderTtl ?? (rnd() < 0.5 ? 1500 : 3000);
  const devices: SimDevice[] = Array.from({ length: o.devices ?? 3 }, (_, i) => ({
    id: `fw${i + 1}`,
    fences: i % 2 === 0,
    model: new DeviceModel({ random: rnd, now: () => world.now, fencing: i % 2 === 0 }),
    calls: [],
    slowUntil: -1,
    errorsUntil: -1,
    rejectsUntil: -1,
  }));
  const deviceConfigs = devices.map((d) => ({ id: d.id, url: `http://${d.id}.sim`, fencesByEpoch: d.fences }));
  note(`deployment: ${runtimeCount} runtimes (leaderTtl ${leaderTtl} ms), ${agentCount} agent(s), ${devices.length} devices, up to ${inFlight} dispatch(es) in flight per device`);

  // agents
  const agents = new Map<string, SimAgent>();
  let agentSerial = 0;
  let incarnations = 0;
  const startSimAgent = async (id = `a${++agentSerial}`) => {
    const gate = new Gate(id);
    const broker = new SimBroker(rabbit, gate, world);
    const entry: SimAgent = { id, gate, broker, handle: null };
    agents.set(id, entry);
    entry.handle = await startAgent(
      { id, devices: deviceConfigs, namespace: 'sim', key: agentCredential(simSecret(o.seed), id), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500, onPermanent: 'skip' },
      { broker, deviceClient: simDeviceClient(devices, gate, world), clock: world.clock(gate), random: rnd, incarnation: `${id}#${o.seed}#${++incarnations}` },
    );
    note(`agent ${id} started`);
  };
  const liveAgents = () => [...agents.values()].filter((a) => !a.gate.dead);

  // runtimes: one database, each its own gate, broker connection and store handle
  const runtimes = new Map<string, SimRuntime>();
  let runtimeSerial = 0;
  let switches = 0;
  const phaseListeners: Array<(phase: SwitchPhaseName, a: Assignment) => void> = [];
  const startSimRuntime = async () => {
    const id = `r${++runtimeSerial}`;
    const gate = new Gate(id);
    const broker = new SimBroker(rabbit, gate, world);
    const faults = new StoreFaults(world);
    let base: Store = store;
    if (o.plant === 'drop-parked-row') base = plantDropParkedRow(store);
    const runtime = createRuntime({ devices: deviceConfigs, runtimeId: id, namespace: 'sim', secret: simSecret(o.seed), leaderTtl, ports: { broker, store: simStore(base, gate, world, faults) }, clock: world.clock(gate) });
    const entry: SimRuntime = { id, gate, broker, faults, runtime, leading: false };
    runtime.on('leader.won', () => ((entry.leading = true), note(`runtime ${id} leads`)));
    runtime.on('leader.lost', (e) => ((entry.leading = false), note(`runtime ${id} no longer leads (${e.holder ?? 'no holder known'})`)));
    runtime.on('agent.dead', (e) => note(`runtime ${id}: agent ${e.agentId} dead (${e.reason})`));
    runtime.on('switch.started', (e) => (switches++, note(`${id}: switch to epoch ${e.assignment.epoch} started (${e.reason})`)));
    runtime.on('switch.phase', (e) => {
      note(`${id}: switch phase ${e.phase}${e.phase === 'draining' ? ` (to ${e.assignment.agentId})` : ''}`);
      for (const l of [...phaseListeners]) l(e.phase as SwitchPhaseName, e.assignment);
    });
    runtime.on('switch.completed', (e) => note(`${id}: switch completed: ${e.assignment.agentId} active, epoch ${e.assignment.epoch}`));
    runtimes.set(id, entry);
    await runtime.start();
  };
  const liveRuntimes = () => [...runtimes.values()].filter((r) => !r.gate.dead);
  const leaders = () => liveRuntimes().filter((r) => r.leading);

  for (let i = 0; i < runtimeCount; i++) await startSimRuntime();
  for (let i = 0; i < agentCount; i++) await startSimAgent();
  const started = await world.run(() => leaders().length > 0, 5000);
  await world.run(() => false, world.now + 1500); // the agents heartbeat and one is chosen
  const stats = () => ({ accepted: calls.filter((c) => c.outcome === 'accepted').length, applied: devices.reduce((t, d) => t + d.model.applied.length, 0), switches, simulatedMs: world.now });
  const calls: HostCall[] = [];
  if (!started || !(await store.getAssignment())) return { seed: o.seed, ok: false, violations: ['no runtime led or no agent became active at start'], trace, stats: stats() };

  // the host: per device, messages 0..n-1, up to `inFlight` calls at once, to any runtime that says it leads
  const perDevice = Math.ceil((o.messages ?? 120) / devices.length);
  // each tick sends up to `inFlight` calls per device at once (they overlap), every 150 ms
  const pace = 150;
  const loadTime = Math.ceil(perDevice / inFlight) * pace;
  const host = new Map(devices.map((d) => [d.id, { todo: Array.from({ length: perDevice }, (_, k) => k), outstanding: 0, done: new Set<number>() }]));
  const loadDone = () => devices.every((d) => host.get(d.id)!.done.size === perDevice);
  let loadEnd = -1;
  let stopLoad = false;
  const dispatchCall = (deviceId: string, k: number, r: SimRuntime) => {
    const h = host.get(deviceId)!;
    const c: HostCall = { id: calls.length, deviceId, k, runtime: r.id, at: world.now, outcome: 'pending' };
    calls.push(c);
    h.outstanding++;
    const m = workloadMessage(deviceId, k);
    const msg = { ...m, body: { ...(m.body as object), call: c.id } };
    const timer = world.at(world.now + HOST_TIMEOUT_MS, () => {
      if (c.outcome !== 'pending') return;
      c.outcome = 'in-doubt';
      h.outstanding--;
      h.todo.unshift(k);
    });
    const answered = (ok: boolean, v: { seq: number } | { code?: string; message: string }) => {
      if (c.outcome === 'accepted' || c.outcome === 'refused' || c.outcome === 'unknown') return;
      const pending = c.outcome === 'pending';
      timer.cancel();
      if (pending) h.outstanding--;
      if (ok) {
        c.outcome = 'accepted';
        c.seq = (v as { seq: number }).seq;
        h.done.add(k);
        if (loadEnd < 0 && loadDone()) loadEnd = world.now;
      } else if ((v as { details?: { outcome?: string } }).details?.outcome === 'unknown') {
        // baton says it cannot tell: the host sends it again, and either copy may be applied
        c.outcome = 'unknown';
        if (pending) h.todo.unshift(k);
      } else {
        c.outcome = 'refused';
        c.error = (v as { code?: string }).code ?? (v as Error).message;
        if (pending) h.todo.unshift(k);
      }
    };
    r.gate.run(() =>
      r.runtime.dispatch(msg).then(
        (v) => r.gate.run(() => answered(true, v)),
        (e: Error & { code?: string }) => r.gate.run(() => answered(false, e)),
      ),
    );
  };
  const tick = () => {
    if (stopLoad || loadDone()) return;
    for (const d of devices) {
      const h = host.get(d.id)!;
      while (h.outstanding < inFlight && h.todo.length > 0) {
        const k = h.todo[0]!;
        if (h.done.has(k)) {
          h.todo.shift();
          continue;
        }
        const ls = leaders();
        if (ls.length === 0) break;
        h.todo.shift();
        dispatchCall(d.id, k, ls[Math.floor(rnd() * ls.length)]!);
      }
    }
    world.at(world.now + pace, tick);
  };
  const loadStart = world.now;
  world.at(world.now, tick);

  // faults
  let healAt = loadStart;
  const healsAt = (t: number) => (healAt = Math.max(healAt, t));
  const plan: WideFault[] = Array.isArray(o.faults) ? (o.faults as WideFault[]) : o.faults === false ? [] : drawWideFaults(rnd);
  const apply = makeFaults({ world, rnd, note, store, devices, agents, runtimes, liveAgents, liveRuntimes, leaders, startSimAgent, startSimRuntime, healsAt });
  for (const f of plan) {
    world.at(loadStart + Math.floor(f.at * loadTime), () => {
      if (!f.when) return void apply(f, null);
      // strike at the next switch that reaches this phase (given up once the load is over)
      const l = (phase: SwitchPhaseName, a: Assignment) => {
        if (phase !== f.when) return;
        phaseListeners.splice(phaseListeners.indexOf(l), 1);
        void apply(f, a);
      };
      phaseListeners.push(l);
    });
  }

  // a heartbeat of the world, so that time always moves
  const beat = () => world.at(world.now + 500, beat);
  beat();
  // the load, until it is accepted or it cannot be any more
  for (;;) {
    const limit = Math.max(healAt, loadStart + loadTime) + LIVENESS_MS;
    await world.runTo(loadDone, Math.min(limit, world.now + 1000));
    if (loadDone() || world.now >= limit) break;
  }
  stopLoad = true;
  phaseListeners.length = 0;
  const violations: string[] = [];
  if (!loadDone()) {
    const missing = devices.reduce((t, d) => t + perDevice - host.get(d.id)!.done.size, 0);
    violations.push(`liveness: ${missing} of ${perDevice * devices.length} messages never accepted by ${LIVENESS_MS} ms after the faults healed`);
  }

  // drive the world while a check's promise settles (a store or broker call may need timers)
  const drive = async <T>(p: Promise<T>, ms: number): Promise<T | undefined> => {
    let out: { v: T } | null = null;
    p.then((v) => (out = { v }), () => (out = { v: undefined as T }));
    await world.run(() => out !== null, world.now + ms);
    return out === null ? undefined : (out as { v: T }).v;
  };

  // liveness, once the load is over and the faults healed (faults planned late may still strike)
  const loadOver = loadEnd < 0 ? world.now : loadEnd;
  const deadline = () => Math.max(healAt, loadOver) + LIVENESS_MS;
  let live: string[] = [];
  for (;;) {
    await world.runTo(() => false, Math.max(world.now + 500, Math.min(healAt, deadline())));
    live = (await drive(liveness(), 2000)) ?? ['liveness check did not answer'];
    if (live.length === 0 || world.now >= deadline()) break;
  }
  // lost messages are reported with the safety checks below
  violations.push(...live.filter((x) => !/\(lost\)/.test(x)).map((x) => `liveness (${LIVENESS_MS} ms after healing): ${x}`));

  async function liveness(): Promise<string[]> {
    const v: string[] = [];
    const ls = leaders();
    if (ls.length !== 1) v.push(`${ls.length} runtimes say they lead (${ls.map((r) => r.id).join(', ') || 'none'})`);
    const a = await store.getAssignment();
    const state = (id: string) => (agents.get(id)?.gate.dead !== false ? 'dead' : 'alive');
    if (!a || a.lock !== 0 || a.phase !== 'normal') v.push(`the recorded assignment is ${a ? `phase ${a.phase}, lock ${a.lock}, agent ${a.agentId} (${state(a.agentId)})` : 'missing'}`);
    else if (state(a.agentId) === 'dead') v.push(`the recorded active agent ${a.agentId} is dead`);
    if (ls.length >= 1) {
      const s = await ls[0]!.runtime.status();
      const coord = JSON.stringify(s.coordinator);
      if (!coord.includes('normal')) v.push(`the leader's coordinator is in ${coord}`);
      if (s.dispatcher !== 'sending') v.push(`the leader's dispatcher is in ${JSON.stringify(s.dispatcher)}`);
    }
    const parked = await store.countParked();
    if (parked) v.push(`${parked} message(s) parked`);
    for (const [name, q] of rabbit.queues) {
      if (!name.startsWith('sim.agent.')) continue;
      const unacked = unackedIn(name);
      if (q.ready.length || unacked) v.push(`queue ${name}${a && a.topic === name ? ' (active)' : ' (not active)'} holds ${q.ready.length} ready, ${unacked} unacked`);
    }
    const dead = await store.listDeadLetters();
    const open = checkCalls(devices, calls, dead).filter((x) => /lost/.test(x));
    v.push(...open);
    const hung = calls.filter((c) => c.outcome === 'in-doubt' || c.outcome === 'pending').filter((c) => !runtimes.get(c.runtime)!.gate.dead);
    if (hung.length) v.push(`${hung.length} dispatch() call(s) to a live runtime never answered (e.g. ${hung[0]!.deviceId} to ${hung[0]!.runtime} at ${hung[0]!.at} ms)`);
    return v;
  }
  function unackedIn(queue: string): number {
    let n = 0;
    for (const p of [...agents.values(), ...runtimes.values()]) {
      for (const conn of p.broker.connections) for (const { queue: q, c } of conn['consumers']) if (q === queue) n += c.unacked.size;
    }
    return n;
  }

  // safety, from the devices and the dead letters
  const dead = await store.listDeadLetters();
  violations.push(...checkCalls(devices, calls, dead));

  // what the leader's applied() says of every accepted seq
  const leader = leaders()[0];
  if (leader) {
    const answers: AppliedAnswer[] = [];
    let open = 0;
    for (const c of calls) {
      if (c.outcome !== 'accepted') continue;
      const a: AppliedAnswer = { deviceId: c.deviceId, seq: c.seq!, answer: 'unsettled' };
      answers.push(a);
      open++;
      leader.runtime.applied({ deviceId: c.deviceId, seq: c.seq! }, { timeoutMs: 5000 }).then(
        () => ((a.answer = 'resolved'), open--),
        (e: { code?: string }) => ((a.answer = e.code === 'device-rejected' ? 'device-rejected' : e.code === 'timeout' ? 'timeout' : 'other'), open--),
      );
    }
    await world.run(() => open === 0, world.now + 6000);
    violations.push(...checkAppliedAnswers(devices, answers, dead));
  }

  for (const r of runtimes.values()) if (!r.gate.dead) r.gate.kill();
  for (const a of agents.values()) a.gate.kill();
  return { seed: o.seed, ok: violations.length === 0, violations, trace, stats: stats() };
}

/** The planted bug of the narrow model, for the wide one: the oldest parked row is deleted once, never sent. */
function plantDropParkedRow(store: Store): Store {
  let dropped = false;
  return {
    ...store,
    async fetchParked(limit) {
      const rows = await store.fetchParked(limit);
      if (dropped || rows.length === 0) return rows;
      dropped = true;
      await store.deleteParked([rows[0]!.id]);
      return rows.slice(1);
    },
  };
}

interface FaultDeps {
  world: World;
  rnd: () => number;
  note(s: string): void;
  store: Store;
  devices: SimDevice[];
  agents: Map<string, SimAgent>;
  runtimes: Map<string, SimRuntime>;
  liveAgents(): SimAgent[];
  liveRuntimes(): SimRuntime[];
  leaders(): SimRuntime[];
  startSimAgent(id?: string): Promise<void>;
  startSimRuntime(): Promise<void>;
  healsAt(t: number): void;
}

/** Applies one fault now; `a` is the assignment of the switch phase it waited for, if any. */
function makeFaults(x: FaultDeps) {
  const { world, rnd, note } = x;
  const later = (ms: number, fn: () => void) => (x.healsAt(world.now + ms), world.at(world.now + ms, fn));

  /** the active agent, or during a switch the recorded candidate (or, by target, the old agent) */
  const agentVictim = async (f: WideFault, a: Assignment | null): Promise<SimAgent | undefined> => {
    a ??= await x.store.getAssignment();
    let id = a?.agentId;
    if (a && a.lock === 1 && a.previousAgent && a.previousAgent !== a.agentId && (f.target ?? 0) < 0.35) id = a.previousAgent;
    const v = id ? x.agents.get(id) : undefined;
    if (v && !v.gate.dead) return v;
    const live = x.liveAgents();
    return live.length ? live[Math.floor(rnd() * live.length)] : undefined;
  };
  /** the leader, or by target a standby */
  const runtimeVictim = (f: WideFault): SimRuntime | undefined => {
    const live = x.liveRuntimes();
    const standbys = live.filter((r) => !r.leading);
    if ((f.target ?? 0) > 0.75 && standbys.length) return standbys[Math.floor(rnd() * standbys.length)];
    return x.leaders()[0] ?? live[0];
  };
  const killAgent = (v: SimAgent) => {
    v.gate.kill();
    v.broker.kill();
  };
  const killRuntime = (r: SimRuntime) => {
    r.gate.kill();
    r.broker.kill();
    r.leading = false;
  };
  const where = (a: Assignment | null) => (a ? ` (at ${a.phase}, epoch ${a.epoch})` : '');

  return async (f: WideFault, a: Assignment | null): Promise<void> => {
    const size = f.size;
    switch (f.kind) {
      case 'kill-agent': {
        const v = await agentVictim(f, a);
        if (!v) return;
        note(`fault: kill agent ${v.id}${where(a)}`);
        killAgent(v);
        later(200 + Math.floor(size * 2000), () => void x.startSimAgent());
        return;
      }
      case 'stop-agent': {
        const v = await agentVictim(f, a);
        if (!v || v.gate.paused) return;
        const ms = 1000 + Math.floor(size * 9000);
        note(`fault: stop agent ${v.id} for ${ms} ms${where(a)}`);
        v.gate.pause();
        later(ms, () => (note(`fault: resume agent ${v.id}`), v.gate.resume()));
        return;
      }
      case 'crash-runtime': {
        const r = runtimeVictim(f);
        if (!r) return;
        note(`fault: crash runtime ${r.id}${r.leading ? ' (leader)' : ''}${where(a)}`);
        killRuntime(r);
        later(100 + Math.floor(size * 2000), () => void x.startSimRuntime());
        return;
      }
      case 'crash-host': {
        const r = x.leaders()[0];
        const v = await agentVictim({ ...f, target: 1 }, a);
        if (!r || !v) return;
        note(`fault: host crash: runtime ${r.id} (leader) and agent ${v.id} die together${where(a)}`);
        killRuntime(r);
        killAgent(v);
        // another host takes the runtime's place; the agent comes back (under its id) only when
        // it was the last one: its death has to be acted on by the runtime that takes over
        later(1000 + Math.floor(size * 3000), () => void x.startSimRuntime());
        if (x.liveAgents().length === 0) later(1000 + Math.floor(rnd() * 3000), () => void x.startSimAgent(v.id));
        return;
      }
      case 'pause-runtime': {
        const r = runtimeVictim(f);
        if (!r || r.gate.paused) return;
        const ms = 2000 + Math.floor(size * 3000);
        note(`fault: pause runtime ${r.id}${r.leading ? ' (leader)' : ''} for ${ms} ms${where(a)}`);
        r.gate.pause();
        later(ms, () => (note(`fault: resume runtime ${r.id}`), r.gate.resume()));
        return;
      }
      case 'leader-flap':
      case 'db-fail':
      case 'db-hang':
      case 'db-ambiguous': {
        const r = f.kind === 'leader-flap' ? x.leaders()[0] : runtimeVictim(f);
        if (!r) return;
        const [mode, ms] =
          f.kind === 'leader-flap' ? (['flap', 300 + size * 2700] as const)
          : f.kind === 'db-fail' ? (['fail', 500 + size * 3500] as const)
          : f.kind === 'db-hang' ? (['hang', 500 + size * 5000] as const)
          : (['ambiguous', 300 + size * 2700] as const);
        const until = r.faults.add(mode, Math.floor(ms));
        note(`fault: ${r.id}${r.leading ? ' (leader)' : ''}: PostgreSQL ${mode === 'flap' ? 'renewals fail' : mode === 'fail' ? 'calls fail' : mode === 'hang' ? 'calls hang' : 'writes commit, then fail'} for ${Math.floor(ms)} ms${where(a)}`);
        x.healsAt(until + (mode === 'hang' ? 2000 : 0));
        return;
      }
      case 'broker-drop': {
        const ms = 100 + Math.floor(size * 4900);
        if ((f.target ?? 0) < 0.5) {
          const r = x.leaders()[0];
          if (!r) return;
          note(`fault: runtime ${r.id}'s broker connection drops; back in ${ms} ms${where(a)}`);
          r.broker.drop(ms);
        } else {
          const v = await agentVictim({ ...f, target: 1 }, a);
          if (!v) return;
          note(`fault: agent ${v.id}'s broker connection drops; back in ${ms} ms${where(a)}`);
          v.broker.drop(ms);
        }
        x.healsAt(world.now + ms);
        return;
      }
      case 'broker-nack': {
        const ms = 200 + Math.floor(size * 1800);
        const r = (f.target ?? 0) < 0.6 ? x.leaders()[0] : undefined;
        const v = r ? undefined : await agentVictim({ ...f, target: 1 }, a);
        const who = r ?? v;
        if (!who) return;
        note(`fault: the broker nacks ${r ? `runtime ${r.id}'s publishes` : `agent ${v!.id}'s receipts`} for ${ms} ms`);
        who.broker.nackUntilTime(world.now + ms);
        x.healsAt(world.now + ms);
        return;
      }
      case 'device-errors':
      case 'device-rejects':
      case 'slow-device': {
        const d = x.devices[Math.floor((f.target ?? size) * x.devices.length) % x.devices.length]!;
        if (f.kind === 'device-errors') {
          d.errorsUntil = world.now + 1000;
          note(`fault: ${d.id} fails half its writes (503) for 1000 ms`);
          x.healsAt(d.errorsUntil);
        } else if (f.kind === 'device-rejects') {
          const ms = 300 + Math.floor(size * 1700);
          d.rejectsUntil = world.now + ms;
          note(`fault: ${d.id} refuses a third of its writes (422) for ${ms} ms`);
          x.healsAt(d.rejectsUntil);
        } else {
          const ms = 2000 + Math.floor(size * 6000);
          d.slowUntil = world.now + ms;
          note(`fault: ${d.id} answers in 1-6 s for ${ms} ms`);
          x.healsAt(d.slowUntil + 6000);
        }
        return;
      }
    }
  };
}
