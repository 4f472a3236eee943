// Planned handover end to end (issue 15): the real runtime, agents and machines over the in-memory
// broker and store on one simulated clock, with devices that do NOT refuse stale epochs, so that a
// switch for a failure has to wait out the old agent's lease. A planned one does not: the old agent
// gives its lease back. Also: the action's refusals, and an active agent that is told to stop.
import { describe, expect, it } from 'vitest';
import type { ActionResult, Dispatched, Runtime } from '../../src/api.ts';
import { agentDefaults, runtimeDefaults } from '../../src/config.ts';
import { checkDevice, staleWrites } from '../../src/devices/checker.ts';
import { isBatonError } from '../../src/errors.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { simCluster, type SimCluster } from '../support/sim-cluster.ts';

/** Runs the world until `p` settles (or `ms` simulated ms pass); its outcome. */
async function settle<T>(c: SimCluster, p: Promise<T>, ms = 30_000): Promise<T> {
  let done = false;
  const watched = p.finally(() => (done = true));
  watched.catch(() => {});
  await c.world.run(() => done, c.world.now + ms);
  return watched;
}

/** A cluster of one runtime and `agents` agents, `a1` active. */
async function cluster(agents: number, seed = 11) {
  const c = simCluster({ seed, devices: 2, fences: false, storeLatencyMs: 2 });
  const r = await c.runtime('r1');
  let active: string | null = null;
  r.on('coordinator.active', (e) => (active = e.assignment.agentId));
  const handles = [];
  let leased = false;
  for (let i = 1; i <= agents; i++) {
    handles.push(await c.agent(`a${i}`));
    if (i === 1) await c.world.run(() => active === 'a1', c.world.now + 5000);
  }
  handles[0]!.events.once('lease', () => (leased = true));
  // every agent heartbeats; a1 holds a lease (a new leader grants none before the old leader's could have run out)
  await c.world.run(() => leased, c.world.now + 5000);
  expect(active).toBe('a1');
  return { c, r, handles, active: () => active };
}

/** One message per device every 4 ms, `n` per device; what dispatch() accepted. */
function load(c: SimCluster, r: Runtime, n: number) {
  const accepted: Dispatched[] = [];
  let i = 0;
  const tick = () => {
    if (i >= n) return;
    for (const d of ['fw1', 'fw2']) void r.dispatch(workloadMessage(d, i)).then((x) => accepted.push(x), () => {});
    i++;
    c.world.at(c.world.now + 4, tick);
  };
  tick();
  const allApplied = () => accepted.length === 2 * n && accepted.every((a) => c.models.get(a.deviceId)!.applied.some((x) => x.seq === a.seq));
  return { accepted, allApplied };
}

/** What each device's applied log says: exactly the accepted seqs, in order, once each, no stale epoch; and the longest gap between two writes. */
function devicesSay(c: SimCluster, accepted: Dispatched[]) {
  return ['fw1', 'fw2'].map((d) => {
    const log = c.models.get(d)!.applied;
    const check = checkDevice(d, log.map((a) => a.seq), accepted.filter((a) => a.deviceId === d).map((a) => a.seq));
    let gap = 0;
    for (let i = 1; i < log.length; i++) gap = Math.max(gap, log[i]!.at - log[i - 1]!.at);
    const firstNew = log.findIndex((a) => (a.epoch ?? 0) > 1);
    const oldAfterNew = firstNew < 0 ? 0 : log.slice(firstNew).filter((a) => a.epoch === 1).length;
    return { ok: check.ok, duplicates: check.duplicates, missing: check.missing, stale: staleWrites(log), oldAfterNew, gap, epochs: [...new Set(log.map((a) => a.epoch))] };
  });
}

describe('planned handover', () => {
  it('moves the stream on purpose: no duplicate, no stale write, a pause far below the lease the failover path waits out', async () => {
    const { c, r } = await cluster(2);
    const { accepted, allApplied } = load(c, r, 250);
    const events: string[] = [];
    r.on('handover.released', (e) => events.push(`released ${e.agentId}`));
    r.on('handover.fallback', (e) => events.push(`fallback ${e.why}`));
    await c.world.run(() => false, c.world.now + 500);
    const result = await settle(c, r.handover({ to: 'a2', by: 'cli:alice' }));
    await c.world.run(allApplied, c.world.now + 10_000);

    expect(result).toMatchObject({ action: 'handover', target: 'a2', outcome: 'done' });
    expect(result.detail).toMatch(/^the stream moved from a1 to a2 \(epoch 2\) in \d+ ms: a1 finished the requests on the wire and gave its lease back$/);
    expect(events).toEqual(['released a1']);
    for (const d of devicesSay(c, accepted)) {
      expect(d).toMatchObject({ ok: true, duplicates: 0, missing: 0, stale: 0, oldAfterNew: 0, epochs: [1, 2] });
      // the failover path waits out the old lease (leaseDuration) before the new agent may write
      expect(d.gap).toBeLessThan(runtimeDefaults.leaseDuration / 5);
    }
    expect((await settle(c, r.audit({ limit: 1 })))[0]).toMatchObject({ action: 'handover', target: 'a2', by: 'cli:alice', outcome: 'done', detail: result.detail });
    c.killAll();
  });

  it('an old agent that cannot answer (it died mid-give-back) is fenced as after a failure: the switch ends, nothing lost, no stale write', async () => {
    const { c, r } = await cluster(2);
    const { accepted, allApplied } = load(c, r, 200);
    r.on('switch.started', () => c.kill('a1'));
    const fallbacks: string[] = [];
    r.on('handover.fallback', (e) => fallbacks.push(e.why));
    await c.world.run(() => false, c.world.now + 300);
    const result = await settle(c, r.handover({ by: 'test' }));
    await c.world.run(allApplied, c.world.now + 10_000);
    expect(fallbacks).toHaveLength(1);
    expect(result.detail).toMatch(/^the stream moved from a1 to a2 \(epoch 2\) in \d+ ms, as after a failure: a1 did not give its lease back \(.+\), so it was fenced and its lease waited out$/);
    const says = devicesSay(c, accepted);
    for (const d of says) expect(d).toMatchObject({ ok: true, stale: 0, oldAfterNew: 0 });
    // the stream stood still until the old agent's lease was waited out: the last lease it was
    // granted answered a heartbeat sent at most one heartbeat interval before it died, and ran a
    // lease duration from then; it wrote nothing after it died
    expect(Math.max(...says.map((d) => d.gap))).toBeGreaterThan(runtimeDefaults.leaseDuration - agentDefaults.heartbeatInterval);
    c.killAll();
  });

  it('refuses what cannot run, saying why; a second request while one runs joins it', async () => {
    const { c, r } = await cluster(2);
    const refusal = async (p: Promise<unknown>) => settle(c, p).then(() => null, (e: unknown) => (isBatonError(e) ? { code: e.code, message: e.message } : e));
    expect(await refusal(r.handover({ to: 'a9' }))).toEqual({ code: 'no-standby-agent', message: expect.stringContaining('agent a9 is not known to this runtime (agents: a1 active, a2 idle)') });
    expect(await refusal(r.handover({ to: 'a1' }))).toEqual({ code: 'no-standby-agent', message: expect.stringContaining('agent a1 is the active agent already') });
    const r2 = await c.runtime('r2');
    expect(await refusal(r2.handover())).toEqual({ code: 'not-leader', message: expect.stringMatching(/this runtime \(r2\) is standing by; runtime r1 leads/) });

    const first = r.handover({ by: 'one' });
    const second = r.handover({ by: 'two' });
    const [a, b] = (await settle(c, Promise.all([first, second]))) as [ActionResult, ActionResult];
    expect([a.outcome, b.outcome]).toEqual(['done', 'already']);
    expect(b.target).toBe('a2');

    // a failover switch runs (the new active agent died): no handover starts then
    let failover = false;
    r.on('switch.started', (e) => (failover ||= !e.reason.startsWith('planned')));
    c.kill('a2');
    await c.world.run(() => failover, c.world.now + 5000);
    expect(await refusal(r.handover())).toEqual({ code: 'no-active-agent', message: expect.stringMatching(/^no handover was started: the coordinator is switching \(phase switching, from a2 to a2\)/) });

    const audit = await settle(c, r.audit());
    expect(audit.map((e) => `${e.by} ${e.outcome}`)).toEqual(expect.arrayContaining(['host refused', 'one done', 'two already']));
    expect(audit.some((e) => e.by === 'host' && e.detail.includes('standing by'))).toBe(false);
    c.killAll();
  });

  it('a single agent cannot be handed over: a handover needs a second agent', async () => {
    const { c, r } = await cluster(1);
    const err = await settle(c, r.handover()).catch((e: unknown) => e);
    expect(isBatonError(err, 'no-standby-agent')).toBe(true);
    expect((err as Error).message).toMatch(/a handover needs a second agent running and healthy, and there is none \(agents: a1 active\)/);
    c.killAll();
  });
});

describe('an agent told to stop (SIGTERM)', () => {
  it('while active, with another agent healthy: asks for a handover and stops once it gave its lease back', async () => {
    const { c, r, handles, active } = await cluster(2);
    const { accepted, allApplied } = load(c, r, 150);
    await c.world.run(() => false, c.world.now + 300);
    const how = await settle(c, handles[0]!.leave());
    expect(how).toBe('handed-over');
    await c.world.run(() => active() === 'a2', c.world.now + 5000);
    expect(active()).toBe('a2');
    await c.world.run(allApplied, c.world.now + 10_000);
    for (const d of devicesSay(c, accepted)) expect(d).toMatchObject({ ok: true, duplicates: 0, stale: 0, oldAfterNew: 0, epochs: [1, 2] });
    expect((await settle(c, r.audit({ limit: 1 })))[0]).toMatchObject({ action: 'handover', by: 'agent:a1 (stopping)', outcome: 'done' });
    c.killAll();
  });

  it('not active: stops at once', async () => {
    const { c, handles } = await cluster(2);
    const started = c.world.now;
    expect(await settle(c, handles[1]!.leave())).toBe('not-active');
    expect(c.world.now - started).toBeLessThan(100);
    c.killAll();
  });

  it('active with no other agent: stops after its wait, as after a failure', async () => {
    const { c, handles } = await cluster(1);
    const started = c.world.now;
    expect(await settle(c, handles[0]!.leave())).toBe('no-handover');
    expect(c.world.now - started).toBeGreaterThanOrEqual(5000);
    c.killAll();
  });
});
