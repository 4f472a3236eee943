// Handovers that once lost or parked messages for good (issue 12), replayed deterministically:
// the real runtime, machines and agents over the in-memory ports and a simulated clock.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { checkDevice, staleWrites } from '../../src/devices/checker.ts';
import { DeviceModel } from '../../src/devices/model.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { DeviceClient } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { simulate } from '../../src/tools/sim/simulation.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

describe('handover regressions', () => {
  it('hole 4: an agent stopped with requests on the wire, released after the switch began, loses nothing (seed 3: stop the active agent 5 s and crash the leading runtime)', async () => {
    const r = await simulate({ seed: 3, faults: [{ at: 0, kind: 'stop-agent', size: 0.99975 }, { at: 0, kind: 'crash-runtime', size: 0.999 }] });
    expect(r.violations, r.trace.join('\n')).toEqual([]);
    expect(r.stats.switches).toBe(1);
  });

  it('hole 6: the only agent, stopped 3 s, is chosen again under the new epoch: everything applied in order, back to normal, nothing parked', async () => {
    const world = new World(7);
    const rabbit = new MemoryRabbit('sim');
    const store = createMemoryStore({ now: () => world.now });
    const model = new DeviceModel({ now: () => world.now, fencing: true });
    const memory = createMemoryDeviceClient(new Map([['fw1', model]]));
    const agentGate = new Gate('a1');
    // the device answers after 2 ms; its answer reaches the agent through the agent's gate
    const deviceClient: DeviceClient = {
      send: (d, m, epoch) => new Promise((resolve) => world.at(world.now + 2, () => void memory.send(d, m, epoch).then((o) => agentGate.run(() => resolve(o))))),
      watermark: (d) => new Promise((resolve) => world.at(world.now + 1, () => void memory.watermark(d).then((w) => agentGate.run(() => resolve(w))))),
      close: async () => {},
    };
    const runtimeGate = new Gate('r1');
    const runtime = createRuntime({
      devices: [{ id: 'fw1', fencesByEpoch: true }],
      runtimeId: 'r1',
      namespace: 'sim',
      ...runtimeTrust,
      leaderTtl: 1500,
      ports: { broker: rabbit.connect({ schedule: runtimeGate.run }), store },
      clock: world.clock(runtimeGate),
    });
    await runtime.start();
    await startAgent(
      { id: 'a1', devices: [{ id: 'fw1', url: 'http://fw1.sim', fencesByEpoch: true }], namespace: 'sim', ...agentTrust('a1'), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
      { broker: rabbit.connect({ schedule: agentGate.run }), deviceClient, clock: world.clock(agentGate), incarnation: 'a1#7' },
    );
    await world.run(() => false, 1500);
    expect(await store.getAssignment()).toMatchObject({ agentId: 'a1', epoch: 1, phase: 'normal' });

    // 40 messages, one at a time, while the agent is stopped for 3 s from 300 ms in
    const accepted: number[] = [];
    let busy = false;
    const tick = () => {
      if (!busy && accepted.length < 40) {
        busy = true;
        runtime.dispatch(workloadMessage('fw1', accepted.length)).then(
          (r) => ((busy = false), accepted.push(r.seq)),
          () => (busy = false),
        );
      }
      if (accepted.length < 40) world.at(world.now + 50, tick);
    };
    const t0 = world.now;
    world.at(t0, tick);
    world.at(t0 + 300, () => agentGate.pause());
    world.at(t0 + 3300, () => agentGate.resume());
    const applied = () => accepted.length === 40 && accepted.every((s) => model.applied.some((a) => a.seq === s));
    expect(await world.run(applied, t0 + 60_000)).toBe(true);
    world.at(world.now + 2000, () => {});
    await world.run(() => false, world.now + 2000);

    const check = checkDevice('fw1', model.applied.map((a) => a.seq), accepted);
    expect(check).toMatchObject({ missing: 0, outOfOrder: 0, duplicates: 0 });
    expect(staleWrites(model.applied)).toBe(0);
    const status = await runtime.status();
    expect(status.coordinator).toEqual({ normal: 'idle' });
    expect(status.assignment).toMatchObject({ agentId: 'a1', epoch: 2, lock: 0, phase: 'normal' });
    expect(status.parked).toBe(0);
    expect(status.agents).toMatchObject([{ agentId: 'a1', state: 'active' }]);
    const probe = rabbit.connect();
    await probe.start();
    expect(await probe.queueInfo('sim.agent.a1')).toEqual({ messages: 0, consumers: 1 });
    expect((await store.listSwitches()).map((s) => [s.fromAgent, s.toAgent, s.phase])).toEqual([['a1', 'a1', 'normal']]);
    runtimeGate.kill();
    agentGate.kill();
  });
});
