// A runtime that takes over from a leader that died together with the active agent (same host):
// the standby's agent actor saw the death while it followed, when no one could act on it; the
// switch must start as soon as it leads, not at the next periodic check (issue 12, hole 5).
import { describe, expect, it } from 'vitest';
import { runtimeDefaults } from '../../src/config.ts';
import type { RuntimeEvents } from '../../src/api.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { simCluster } from '../support/sim-cluster.ts';

describe('takeover after the leader and the active agent die together', () => {
  it('the standby switches as soon as it leads, then delivers', async () => {
    const c = simCluster({ seed: 7, devices: 1 });
    const model = c.models.get('fw1')!;
    // defaults: heartbeatTimeout 1 s, hungTimeout 1.5 s, leaderTtl 5 s, checkAgentLoopTime 30 s
    const r1 = await c.runtime('r1');
    const r2 = await c.runtime('r2');
    let r2Leads = false;
    r2.on('leader.won', () => (r2Leads = true));
    let active: string | null = null;
    r1.on('coordinator.active', (e) => (active = e.assignment.agentId));
    await c.agent('a1');
    await c.agent('a2');
    expect(await c.world.run(() => active !== null, 5000)).toBe(true);
    const first = await r1.dispatch(workloadMessage('fw1', 0));
    await c.world.run(() => model.applied.some((a) => a.seq === first.seq), c.world.now + 2000);

    // the host of r1 and of the active agent dies
    const crashedAt = c.world.now;
    c.kill('r1');
    c.kill(active!);
    const started: Array<RuntimeEvents['switch.started'] & { at: number }> = [];
    r2.on('switch.started', (e) => started.push({ ...e, at: c.world.now }));
    let completed = false;
    r2.on('switch.completed', () => (completed = true));
    await c.world.run(() => completed, crashedAt + 60_000);

    expect(r2Leads).toBe(true);
    expect(started).toHaveLength(1);
    expect(started[0]!.reason).toBe(`agent ${active} already dead when adopted`);
    // r2 leads once r1's row lapses (leaderTtl, tried every third of it); the switch starts with it,
    // long before the periodic check (checkAgentLoopTime 30 s)
    const ttl = runtimeDefaults.leaderTtl;
    expect(started[0]!.at - crashedAt).toBeLessThanOrEqual(ttl + Math.ceil(ttl / 3));
    const second = await r2.dispatch(workloadMessage('fw1', 1));
    await c.world.run(() => model.applied.some((a) => a.seq === second.seq), c.world.now + 5000);
    expect(model.applied.map((a) => a.seq)).toEqual([first.seq, second.seq]);
    c.killAll();
  });
});
