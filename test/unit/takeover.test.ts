// A runtime that takes over from a leader that died together with the active agent (same host):
// the standby's agent actor saw the death while it followed, when no one could act on it; the
// switch must start as soon as it leads, not at the next periodic check (issue 12, hole 5).
// The real runtime, agents and machines over the in-memory broker and store, on a simulated clock.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent-worker.ts';
import { DeviceModel } from '../../src/device-model.ts';
import { MemoryRabbit } from '../../src/memory-broker.ts';
import { createMemoryDeviceClient } from '../../src/memory-device.ts';
import { createMemoryStore } from '../../src/memory-store.ts';
import type { DeviceClient, DeviceOutcome, Store } from '../../src/ports.ts';
import { createRuntime, type RuntimeEvents } from '../../src/runtime.ts';
import { Gate, World } from '../../src/sim/world.ts';
import { workloadMessage } from '../../src/workload.ts';

describe('takeover after the leader and the active agent die together', () => {
  it('the standby switches as soon as it leads, then delivers', async () => {
    const world = new World(7);
    const rabbit = new MemoryRabbit('t');
    const store = createMemoryStore({ now: () => world.now });
    const model = new DeviceModel({ random: world.random, now: () => world.now, fencing: true });
    const memory = createMemoryDeviceClient(new Map([['fw1', model]]));
    const devices = [{ id: 'fw1', url: 'http://fw1.sim', fencesByEpoch: true }];
    const deviceClient = (gate: Gate): DeviceClient => ({
      send: (d, m) => new Promise<DeviceOutcome>((resolve) => world.at(world.now + 1, () => void memory.send(d, m).then((out) => gate.run(() => resolve(out))))),
      watermark: (d) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(d).then((w) => gate.run(() => resolve(w))))),
      close: async () => {},
    });
    // a dead process makes no more calls
    const storeFor = (gate: Gate): Store =>
      new Proxy(store, {
        get: (target, prop: keyof Store) =>
          typeof target[prop] === 'function'
            ? async (...args: unknown[]) => {
                if (gate.dead) throw new Error('the process is gone');
                return (target[prop] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
              }
            : target[prop],
      });
    const procs = new Map<string, { gate: Gate; kill(): void }>();
    const runtime = async (id: string) => {
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      // defaults: heartbeatTimeout 1 s, hungTimeout 1.5 s, leaderTtl 3 s, checkAgentLoopTime 30 s
      const r = createRuntime({ devices, runtimeId: id, namespace: 't', ports: { broker: conn, store: storeFor(gate) }, clock: world.clock(gate) });
      procs.set(id, { gate, kill: () => (gate.kill(), conn.kill()) });
      await r.start();
      return r;
    };
    const agent = async (id: string) => {
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      await startAgent({ id, devices, namespace: 't', heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 }, { broker: conn, deviceClient: deviceClient(gate), clock: world.clock(gate), random: world.random, incarnation: `${id}#1` });
      procs.set(id, { gate, kill: () => (gate.kill(), conn.kill()) });
    };

    const r1 = await runtime('r1');
    const r2 = await runtime('r2');
    let r2Leads = false;
    r2.on('leader.won', () => (r2Leads = true));
    let active: string | null = null;
    r1.on('coordinator.active', (e) => (active = e.assignment.agentId));
    await agent('a1');
    await agent('a2');
    expect(await world.run(() => active !== null, 5000)).toBe(true);
    const first = await r1.dispatch(workloadMessage('fw1', 0));
    await world.run(() => model.applied.some((a) => a.seq === first.seq), world.now + 2000);

    // the host of r1 and the active agent dies
    const crashedAt = world.now;
    procs.get('r1')!.kill();
    procs.get(active!)!.kill();
    const started: Array<RuntimeEvents['switch.started'] & { at: number }> = [];
    r2.on('switch.started', (e) => started.push({ ...e, at: world.now }));
    let completed = false;
    r2.on('switch.completed', () => (completed = true));
    await world.run(() => completed, crashedAt + 60_000);

    expect(r2Leads).toBe(true);
    expect(started).toHaveLength(1);
    expect(started[0]!.reason).toBe(`agent ${active} already dead when adopted`);
    // r2 leads once r1's row lapses (leaderTtl 3 s, tried every second); the switch starts with it
    expect(started[0]!.at - crashedAt).toBeLessThanOrEqual(4000);
    const second = await r2.dispatch(workloadMessage('fw1', 1));
    await world.run(() => model.applied.some((a) => a.seq === second.seq), world.now + 5000);
    expect(model.applied.map((a) => a.seq)).toEqual([first.seq, second.seq]);
    for (const p of procs.values()) p.kill();
  });
});
