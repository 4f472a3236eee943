// Adversarial review: fault sequences that break an invariant of DESIGN.md §8, each scripted by
// hand over the real runtime, machines and agents (in-memory broker and store, simulated clock,
// every process behind a gate). Each test asserts the invariant that broke; each failed before its fix.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent-worker.ts';
import { DeviceModel } from '../../src/device-model.ts';
import { MemoryRabbit } from '../../src/memory-broker.ts';
import { createMemoryDeviceClient } from '../../src/memory-device.ts';
import { createMemoryStore } from '../../src/memory-store.ts';
import type { DeviceClient, DeviceConfig, Store } from '../../src/ports.ts';
import { createRuntime, type Runtime, type RuntimeOptions } from '../../src/runtime.ts';
import { SimBroker } from '../../src/sim/sim-broker.ts';
import { simulate } from '../../src/sim/simulation.ts';
import { Gate, World } from '../../src/sim/world.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

interface Proc {
  id: string;
  gate: Gate;
  broker: SimBroker;
  /** this process's database connection: `hang` = no call is answered; those named in `commits` run (commit) all the same, the others never reach the database */
  db: { hang: boolean; commits: Set<string>; holds: Set<string>; held: Array<() => void> };
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
              db.held.push(() => void f.apply(target, args).then((v) => gate.run(() => resolve(v)), (e) => gate.run(() => reject(e))));
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
      const db = { hang: false, commits: new Set<string>(), holds: new Set<string>(), held: [] as Array<() => void> };
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

describe('adversarial', () => {
  it('P1: a park whose answer never comes, replayed by the next leader meanwhile, is refused as "not stored" although it was applied (invariant 2)', async () => {
    const h = harness({ seed: 11 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    const r2 = await h.runtime('r2');
    await h.agent('a1');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });
    const m0 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p0', body: {} });
    await h.run(() => h.applied('fw1').length === 1, 2000);
    expect(m0.state).toBe('accepted');

    // the only agent dies: r1 switches, finds no candidate, parks from now on
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    // r1's database connection goes half-open: the park commits, its answer never comes
    r1.db.hang = true;
    r1.db.commits.add('park');
    const m1 = h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: {} });
    await h.run(() => false, 50);
    expect(await h.store.countParked()).toBe(1);
    // r1 cannot renew: r2 leads, resumes the switch with a new agent, replays the parked row
    await h.run(() => r2.leading, 5000);
    await h.agent('a2');
    await h.run(() => h.applied('fw1').some((a) => a.path === '/policies/p1'), 10_000);
    expect(h.applied('fw1').map((a) => a.path), h.trace.join('\n')).toEqual(['/policies/p0', '/policies/p1']);
    // r1's connection comes back; its park times out (databaseTimeout) and is read back
    r1.db.hang = false;
    await h.run(() => m1.state !== 'pending', 30_000);

    // invariant 2: nothing is applied that was not accepted. dispatch() must not tell the host
    // "not stored: dispatch it again" about a message the device applied (the host would send it again)
    const toldNotStored = m1.state === 'refused' && /not stored/.test(m1.error ?? '');
    // accepted, or an honest "outcome unknown" (the row may have been replayed by another leader)
    expect({ toldNotStored, acceptedOrUnknown: m1.state === 'accepted' || /may or may not be delivered/.test(m1.error ?? '') }, h.trace.join('\n')).toEqual({ toldNotStored: false, acceptedOrUnknown: true });
    h.kill('r1');
    h.kill('r2');
  });

  it('P2: a leader paused while it drains keeps draining after it lost the leadership, and later moves the active agent\'s queue into a dead agent\'s queue (invariants 2 and 5)', async () => {
    const h = harness({ seed: 12 });
    const r1 = await h.runtime('r1');
    await h.run(() => r1.leading, 5000);
    const r2 = await h.runtime('r2');
    const a1 = await h.agent('a1');
    await h.run(() => false, 300);
    await h.agent('a2');
    await h.run(() => false, 1500);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal' });

    // a1 hangs (SIGSTOP) holding its queue: r1 switches to a2 and waits in draining for a1's consumer to go
    a1.gate.pause();
    h.note('a1 paused');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase draining')), 10_000);
    // r1 is paused right there (a VM freeze, a long GC): r2 leads and finishes that switch once a1 lets go
    r1.gate.pause();
    h.note('r1 paused');
    await h.run(() => r2.leading, 5000);
    a1.gate.resume();
    h.note('a1 resumed');
    await h.run(() => h.trace.some((l) => l.includes('r2: switch completed: a2 active')), 10_000);
    // a2 dies: the only healthy agent, a1, is chosen again
    h.kill('a2');
    await h.run(() => h.trace.some((l) => l.includes('r2: switch completed: a1 active')), 10_000);
    await h.agent('a3');
    await h.run(() => false, 1000);
    // r1 wakes up: it no longer leads, but the drain it was in goes on waiting for a1's queue to lose its consumer
    r1.gate.resume();
    h.note('r1 resumed');
    await h.run(() => false, 2000);
    expect(r1.leading).toBe(false);
    expect(await h.store.getAssignment()).toMatchObject({ agentId: 'a1', phase: 'normal', lock: 0 });

    // a1's broker connection drops for 2 s, while the host dispatches three messages to r2 (the leader)
    a1.broker.drop(2000);
    h.note('a1 broker connection dropped for 2 s');
    const out = [1, 2, 3].map((i) => h.dispatch(r2, { deviceId: 'fw1', method: 'PUT', path: `/policies/q${i}`, body: {} }));
    await h.run(() => false, 30_000);

    const accepted = out.filter((o) => o.state === 'accepted').map((o) => o.seq!);
    const appliedSeqs = new Set(h.applied('fw1').map((a) => a.seq));
    const stranded = [...h.rabbit.queues].filter(([name, q]) => name.startsWith('adv.agent.') && q.ready.length > 0).map(([name, q]) => `${name}: ${q.ready.length} ready`);
    const a = await h.store.getAssignment();
    // invariant 2: every accepted message applied (or dead-lettered); invariant 5: none waits in a non-active queue
    expect({ lost: accepted.filter((s) => !appliedSeqs.has(s)), stranded, active: a?.agentId }, h.trace.join('\n')).toEqual({ lost: [], stranded: [], active: a?.agentId });
    expect(accepted.length).toBe(3);
    for (const id of ['r1', 'r2', 'a1', 'a3']) h.kill(id);
  });

  it('P7: a leader paused while its replay holds messages (the closing round) parks them when it wakes, after the next leader finished the switch: accepted, then stranded (invariant 5)', async () => {
    const h = harness({ seed: 17, storeLatencyMs: 5 });
    let dispatcherState = '';
    const r1 = await h.runtime('r1', {
      inspect: (e) => {
        if (e.type === '@xstate.snapshot' && (e.snapshot as { machine?: { id?: string } }).machine?.id === 'dispatcher') dispatcherState = JSON.stringify((e.snapshot as unknown as { value: unknown }).value);
      },
    });
    await h.run(() => r1.leading, 5000);
    const r2 = await h.runtime('r2');
    await h.agent('a1');
    await h.run(() => false, 1500);
    h.kill('a1');
    await h.run(() => h.trace.some((l) => l.includes('r1: switch phase awaiting-candidate')), 5000);
    const outs: Array<ReturnType<typeof h.dispatch>> = [];
    let k = 0;
    const send = () => outs.push(h.dispatch(r1, { deviceId: 'fw1', method: 'PUT', path: `/policies/p${k++}`, body: {} }));
    for (let i = 0; i < 3; i++) send();
    await h.run(() => false, 100);
    // a new agent: r1 replays; the host keeps sending to r1 every 2 ms
    await h.agent('a2');
    let paused = false;
    const load = () => {
      if (paused || r1.gate.paused) return;
      send();
      h.world.at(h.world.now + 2, load);
    };
    load();
    // pause r1 once a message that arrived during the closing round is held (unanswered) in its mailbox
    let closingFrom = -1;
    await h.run(() => {
      if (!dispatcherState.includes('closing')) return false;
      if (closingFrom < 0) closingFrom = outs.length;
      return outs.slice(closingFrom).some((o) => o.state === 'pending');
    }, 5000);
    expect(dispatcherState).toContain('closing');
    paused = true;
    r1.gate.pause();
    h.note(`r1 paused in ${dispatcherState} with ${outs.filter((o) => o.state === 'pending').length} dispatch(es) unanswered`);
    await h.run(() => r2.leading, 5000);
    await h.run(() => h.trace.some((l) => l.includes('r2: switch completed')), 10_000);
    await h.run(() => false, 1000);
    r1.gate.resume();
    h.note('r1 resumed');
    await h.run(() => false, 25_000);
    const accepted = outs.filter((o) => o.state === 'accepted');
    const appliedSeqs = new Set(h.applied('fw1').map((a) => a.seq));
    const lost = accepted.filter((o) => !appliedSeqs.has(o.seq!)).map((o) => o.seq);
    const parked = await h.store.countParked();
    // r1 answers "accepted" for the messages it held, after it woke up; the new leader is in normal: they must not stay parked
    expect({ lost, parked }, h.trace.join('\n')).toEqual({ lost: [], parked: 0 });
    for (const id of ['r1', 'r2', 'a2']) h.kill(id);
  });

  it('P1 in the wide simulation: seed 100591 (host crash, then the new leader\'s PostgreSQL hangs at switching): 9 writes applied although dispatch() refused them', async () => {
    const r = await simulate({ seed: 100591, model: 'wide' });
    expect(r.violations, r.trace.join('\n')).toEqual([]);
  });
});
