// A switch under sustained load: the replay must end within a bound that does not depend on the
// incoming rate (issue 12, hole 11). Before, every message that arrived while replaying was parked
// and the replay chased them for as long as the load lasted. The real runtime and agents over the
// in-memory ports, with a PostgreSQL round trip of 1 ms (simulated), 1,000 messages a second.
import { describe, expect, it } from 'vitest';
import { workloadMessage } from '../../src/tools/workload.ts';
import { simCluster } from '../support/sim-cluster.ts';

describe('a switch under sustained load', () => {
  it('replays in a bounded time while messages keep coming, and loses or reorders none', async () => {
    const c = simCluster({ seed: 11, devices: 8, storeLatencyMs: 1 });
    const r = await c.runtime('r1');
    let active: string | null = null;
    r.on('coordinator.active', (e) => (active ??= e.assignment.agentId));
    await c.agent('a1');
    await c.agent('a2');
    expect(await c.world.run(() => active !== null, 5000)).toBe(true);

    // one message a millisecond, round robin over the devices, none awaited before the next
    const devices = [...c.models.keys()];
    const accepted = new Map<string, number[]>(devices.map((d) => [d, []]));
    const refused: string[] = [];
    const start = c.world.now;
    const loadMs = 4000;
    let k = 0;
    const tick = () => {
      const d = devices[k % devices.length]!;
      r.dispatch(workloadMessage(d, Math.floor(k++ / devices.length))).then((m) => accepted.get(d)!.push(m.seq), (e: Error) => refused.push(e.message));
      if (c.world.now < start + loadMs) c.world.at(c.world.now + 1, tick);
    };
    c.world.at(start, tick);

    const phases: Array<{ phase: string; at: number }> = [];
    r.on('switch.phase', (e) => phases.push({ phase: e.phase, at: c.world.now }));
    let completedAt: number | null = null;
    r.on('switch.completed', () => (completedAt = c.world.now));
    c.world.at(start + 500, () => c.kill(active!));
    await c.world.run(() => completedAt !== null, start + 30_000);

    const replayingAt = phases.find((p) => p.phase === 'replaying')!.at;
    expect(completedAt).not.toBeNull();
    expect(completedAt!).toBeLessThan(start + loadMs); // the load still runs
    expect(completedAt! - replayingAt).toBeLessThanOrEqual(50);

    // the load ends; everything accepted is applied, in dispatch order, once
    const settled = () => devices.every((d) => accepted.get(d)!.every((seq) => c.models.get(d)!.applied.some((a) => a.seq === seq)));
    expect(await c.world.run(() => k > loadMs && settled(), start + 60_000)).toBe(true);
    expect(refused).toEqual([]);
    for (const d of devices) {
      const applied = c.models.get(d)!.applied.map((a) => a.seq!);
      expect(new Set(applied).size).toBe(applied.length);
      expect(applied).toEqual([...applied].sort((a, b) => a - b));
      expect(applied).toEqual(accepted.get(d)!.sort((a, b) => a - b));
    }
    c.killAll();
  });
});
