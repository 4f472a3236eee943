// Adversarial review, second pass: fault sequences left after the fixes of issue 12 that lose,
// strand or duplicate an accepted message. Each is scripted by hand over the real runtime, machines
// and agents (in-memory broker and store, simulated clock, every process behind a gate) and asserts
// the invariant of DESIGN.md §8 that breaks. They fail on the code as reviewed; the lead fixes.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent-worker.ts';
import { DeviceModel } from '../../src/device-model.ts';
import { MemoryRabbit } from '../../src/memory-broker.ts';
import { createMemoryDeviceClient } from '../../src/memory-device.ts';
import { createMemoryStore } from '../../src/memory-store.ts';
import type { DeviceClient, DeviceConfig, Store } from '../../src/ports.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.ts';
import { SimBroker } from '../../src/sim/sim-broker.ts';
import { Gate, World } from '../../src/sim/world.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

interface Proc {
  id: string;
  gate: Gate;
  broker: SimBroker;
  /** this process's database connection: `hang` = no call is answered; those named in `commits` run (commit) all the same, the others never reach the database */
  db: { hang: boolean; commits: Set<string>; holds: Set<string>; held: Array<(() => void) & { prop?: string }> };
}

interface RuntimeProc extends Proc {
  runtime: Runtime;
  leading: boolean;
  trace: string[];
}

function harness(o: {
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
        send: (d, m) =>
          new Promise((resolve) =>
            world.at(world.now + 1, () => {
              // applied on arrival; the answer reaches the agent through its gate after `delayMs`
              const lost = o.loseAnswer?.(m) === true;
              void memory.send(d, m).then((out) => {
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
function release(p: Proc, prop: string): number {
  const mine = p.db.held.filter((f) => f.prop === prop);
  p.db.held = p.db.held.filter((f) => f.prop !== prop);
  for (const f of mine) f();
  return mine.length;
}

describe('adversarial2', () => {
  it('Q1: a park statement delayed past databaseTimeout is read back before it reaches the database: told "not stored, dispatch it again", then it commits and is replayed; the resend is applied too (invariants 2 and 4); fixed: the read-back marks it refused, the late statement inserts nothing', async () => {
    const h = harness({ seed: 21 });
    const r1 = await h.runtime('r1', { databaseTimeout: 1000 });
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // the only agent dies: r1 switches, finds no candidate, parks from now on
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    // the park's statement is held on its connection (a retransmit, a lock wait): it reaches the database later
    r1.db.holds.add('park');
    const m1 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await h.run(() => m1.state !== 'pending', 5000);
    h.note(`park answered: ${m1.state} ${m1.error ?? ''}`);
    // the statement arrives: r1 still leads in the same term, so it commits
    r1.db.holds.delete('park');
    expect(release(r1, 'park')).toBe(1);
    await h.run(() => false, 50);
    h.note(`parked rows now: ${await h.store.countParked()}`);
    // the host did what the error said: dispatch it again
    const again = m1.state === 'refused' && /not stored/.test(m1.error ?? '') ? h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} }) : null;
    await h.run(() => again === null || again.state !== 'pending', 5000);
    await h.agent('a2');
    await h.run(() => false, 10_000);
    const applied = h.applied('fw1').filter((a) => a.path === '/policies/p1').map((a) => a.seq);
    // invariant 2: applied = accepted, exactly (a call told "not stored" is not applied); invariant 4: one write per message
    const accepted = [m1, again].filter((x) => x?.state === 'accepted').map((x) => x!.seq);
    expect({ applied, appliedCopies: applied.length }, h.trace.join('\n')).toEqual({ applied: accepted, appliedCopies: 1 });
    for (const id of ['r1', 'a2']) h.kill(id);
  });

  it('Q1b: the same delayed park landing after the switch completed: the row stays parked while the dispatcher sends directly, never replayed (invariant 5)', async () => {
    const h = harness({ seed: 23 });
    const r1 = await h.runtime('r1', { databaseTimeout: 1000 });
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 1500);
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    r1.db.holds.add('park');
    const m1 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await h.run(() => m1.state !== 'pending', 5000);
    expect(m1.state).toBe('refused');
    // an agent arrives: the switch completes with nothing to replay, back to normal
    r1.db.holds.delete('park');
    await h.agent('a2');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch completed: a2 active')), 10_000);
    const m2 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p2', body: {} });
    await h.run(() => m2.state !== 'pending', 2000);
    // now the delayed statement reaches the database: r1 still leads in the same term, so it commits
    expect(release(r1, 'park')).toBe(1);
    await h.run(() => false, 20_000);
    const st = await r1.runtime.status();
    // invariant 5: once faults heal, nothing parked (the row is never replayed: the dispatcher sends directly)
    expect({ coordinator: st.coordinator, parked: st.parked }, h.trace.join('\n')).toEqual({ coordinator: { normal: 'idle' }, parked: 0 });
    for (const id of ['r1', 'a2']) h.kill(id);
  });

  it('Q2: a completeSwitch delayed across a leadership lapse that the same runtime wins back (same term epoch) lands after loading read "replaying": the re-entered replaying fails for good, every message parks forever (invariant 5)', async () => {
    const h = harness({ seed: 22 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    await h.agent('a1');
    await h.run(() => false, 300);
    await h.agent('a2');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // the statement that completes the switch will be slow to reach the database
    r1.db.holds.add('completeSwitch');
    h.kill('a1');
    await h.run(() => r1.db.held.some((f) => f.prop === 'completeSwitch'), 10_000);
    h.note('completeSwitch sent, held on its connection');
    // the same network trouble holds the renewals: r1's lease runs out (no other runtime takes over)
    r1.db.holds.add('acquireLeadership');
    r1.db.holds.add('setPhase');
    await h.run(() => !r1.leading, 5000);
    // the renewals get through again: r1 wins back the row it still holds, same epoch (a continued term)
    r1.db.holds.delete('acquireLeadership');
    release(r1, 'acquireLeadership');
    await h.run(() => r1.leading, 5000);
    // loading read phase replaying; the re-entered replaying's setPhase is on its way; the old completeSwitch lands first
    await h.run(() => r1.db.held.some((f) => f.prop === 'setPhase'), 5000);
    r1.db.holds.delete('completeSwitch');
    r1.db.holds.delete('setPhase');
    release(r1, 'completeSwitch');
    await h.run(() => false, 20);
    release(r1, 'setPhase');
    await h.run(() => false, 2000);
    const m = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/after', body: {} });
    await h.run(() => false, 20_000);
    const st = await r1.runtime.status();
    h.note(`coordinator ${JSON.stringify(st.coordinator)}, dispatcher ${JSON.stringify(st.dispatcher)}, parked ${st.parked}`);
    // invariant 5: once faults heal, normal with nothing parked; the accepted message applied
    expect({ accepted: m.state, coordinator: st.coordinator, parked: st.parked, applied: h.applied('fw1').some((a) => a.path === '/policies/after') }, h.trace.join('\n')).toEqual({ accepted: 'accepted', coordinator: { normal: 'idle' }, parked: 0, applied: true });
    for (const id of ['r1', 'a2']) h.kill(id);
  });
  it('Q3: a beginSwitch delayed across a leadership lapse that the same runtime wins back lands after it adopted the (healthy again) agent: the database says lock = 1, switching, while the coordinator runs normal, and the stale step stops the grants to the agent: later messages wait in its queue forever (invariants 2 and 5)', async () => {
    const h = harness({ seed: 24 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    const a1 = await h.agent('a1');
    await h.run(() => false, 300);
    await h.agent('a2');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    // a1 hangs: r1 declares it dead and sends the compare-and-set that begins the switch; it is slow to arrive
    r1.db.holds.add('beginSwitch');
    a1.gate.pause();
    await h.run(() => r1.db.held.some((f) => f.prop === 'beginSwitch'), 10_000);
    // the renewals are held too: r1's lease runs out; a1 resumes meanwhile
    r1.db.holds.add('acquireLeadership');
    await h.run(() => !r1.leading, 5000);
    a1.gate.resume();
    h.note('a1 resumed');
    await h.run(() => false, 500);
    r1.db.holds.delete('acquireLeadership');
    release(r1, 'acquireLeadership');
    await h.run(() => r1.leading && h.trace.filter((l) => l.includes('r1 leads')).length === 2, 5000);
    await h.run(() => false, 500);
    // the old compare-and-set arrives: same holder, same term epoch, so it is taken
    r1.db.holds.delete('beginSwitch');
    release(r1, 'beginSwitch');
    await h.run(() => false, 1000);
    const m = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/after', body: {} });
    await h.run(() => false, 5000);
    const m2 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/later', body: {} });
    await h.run(() => false, 40_000);
    h.note(`/policies/later: ${m2.state}, applied ${h.applied('fw1').some((x) => x.path === '/policies/later')}`);
    const st = await r1.runtime.status();
    const a = await h.store.getAssignment();
    h.note(`coordinator ${JSON.stringify(st.coordinator)}, assignment ${JSON.stringify(a)}, a1 queue ${st.queueDepth} ready`);
    // invariants 2 and 5: both accepted messages applied; normal with lock = 0, the coordinator agreeing with the database
    expect({ accepted: [m.state, m2.state], applied: ['/policies/after', '/policies/later'].map((p) => h.applied('fw1').some((x) => x.path === p)), coordinator: st.coordinator, lock: a?.lock, phase: a?.phase }, h.trace.join('\n')).toEqual({ accepted: ['accepted', 'accepted'], applied: [true, true], coordinator: { normal: 'idle' }, lock: 0, phase: 'normal' });
    for (const id of ['r1', 'a1', 'a2']) h.kill(id);
  });
});
