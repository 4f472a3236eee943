// The scenario runner's parts without the services: the runtime fleet over a fake child process, the
// waits on its events, the schedule of timeline steps, and what settling waits for.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { DeviceSimulator } from '../../src/devices/simulator.ts';
import { Schedule } from '../../src/tools/scenario/schedule.ts';
import { parseScenario, type Step } from '../../src/tools/scenario/schema.ts';
import { DeadLetterLog, outstanding } from '../../src/tools/scenario/settle.ts';
import { narrate, Timeline } from '../../src/tools/scenario/timeline.ts';
import { until } from '../../src/tools/scenario/wait.ts';
import { fleet } from '../support/scenario-fleet.ts';

describe('the runtime fleet', () => {
  it('hands each runtime its options, and knows who leads, which agent is active and whom each heard', async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    const r2 = await start('r2');
    const leads = f.untilLeads('r1', 1000);
    r1.tell('leader.won', { runtimeId: 'r1' });
    await expect(leads).resolves.toBe(true);
    expect(f.leader()?.id).toBe('r1');
    const active = f.untilActive(1000);
    r1.tell('coordinator.active', { assignment: { agentId: 'a1', epoch: 1, previousAgent: null } });
    await active;
    expect(f.activeAgent).toBe('a1');
    const heard = f.untilHeard(['a1', 'a2'], 1000);
    for (const r of [r1, r2]) for (const a of ['a1', 'a2']) r.tell('agent.registered', { agentId: a });
    await expect(heard).resolves.toBe(true);
  });

  it('names what did not come when a wait passes its deadline', async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    await start('r2');
    r1.tell('agent.registered', { agentId: 'a1' });
    await expect(f.untilHeard(['a1', 'a2'], 50)).rejects.toThrow('no agent.registered for a2 at r1, a1 at r2, a2 at r2 within 0.05 s');
    await expect(f.untilActive(20)).rejects.toMatchObject({ code: 'timeout', message: 'no agent became active within 0.02 s' });
    await expect(f.untilLeads('r2', 20)).rejects.toThrow(/runtime r2 reported no leader\.won/);
  });

  it('rejects a start when the process exits first', async () => {
    const { f, procs } = fleet();
    const started = f.start('r1');
    procs.get('r1')!.emit('exit', 1, null);
    await expect(started).rejects.toThrow('runtime r1 exited (1) before it started');
  });

  it('dispatches through the leader; with none, waits for the next leader.won instead of spinning', async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    const r2 = await start('r2');
    r1.tell('leader.won', { runtimeId: 'r1' });
    expect(await f.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1' })).toMatchObject({ deviceId: 'fw1' });
    expect(r1.sent.filter((m) => m.type === 'dispatch')).toHaveLength(1);
    f.kill(f.leader()!);
    await new Promise((x) => setImmediate(x));
    expect(f.leader()).toBeUndefined();
    const sent = f.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p2' });
    await new Promise((x) => setTimeout(x, 20));
    expect(r2.sent).toHaveLength(0);
    r2.tell('leader.won', { runtimeId: 'r2' });
    expect(await sent).toMatchObject({ deviceId: 'fw1' });
    expect(r2.sent).toHaveLength(1);
  });

  it('sends a refused message again, and gives up on abort', async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    r1.tell('leader.won', { runtimeId: 'r1' });
    let refusals = 2;
    r1.answer = (m) => (refusals-- > 0 ? { type: 'result', id: m.id, ok: false, code: 'not-leader', message: 'no' } : { type: 'result', id: m.id, ok: true, deviceId: 'fw1', seq: 7 });
    expect(await f.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p' })).toEqual({ deviceId: 'fw1', seq: 7 });
    expect(r1.sent).toHaveLength(3);
    const abort = new AbortController();
    r1.answer = () => null; // lost: the answer never comes until the process ends
    const lost = f.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p' }, abort.signal);
    abort.abort();
    f.kill(f.get('r1')!);
    expect(await lost).toBeNull();
  });
});

describe('the timeline of faults', () => {
  const steps = (timeline: unknown[]): Step[] => parseScenario({ name: 'x', agents: ['a1', 'a2'], timeline }, 'x.json').timeline;
  /** one runtime told on a timeline; `ran` lists the steps acted */
  const narrated = async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    const timeline = new Timeline();
    narrate(f, timeline);
    return { r1, timeline, ran: [] as string[] };
  };

  it('runs timed steps as they fall due, event steps on the runtimes\' events, load.done ones after the load', async () => {
    const { r1, timeline, ran } = await narrated();
    const s = new Schedule(steps([{ at: '50%', do: 'kill-agent', agent: 'active' }, { at: 'switch.completed', do: 'resume-agent', agent: 'a1' }, { at: 'load.done', do: 'start-agent', agent: 'a3' }, { at: '90%', do: 'restart-broker' }]), async (x) => void ran.push(x.label), timeline);
    await s.runDue(10, 100, 0);
    expect(ran).toEqual([]);
    await s.runDue(50, 100, 0);
    expect(ran).toEqual(['kill-agent active']);
    r1.tell('switch.completed', { assignment: { agentId: 'a2', epoch: 2, previousAgent: 'a1' } });
    await new Promise((x) => setImmediate(x));
    expect(ran).toEqual(['kill-agent active', 'resume-agent a1']);
    expect(timeline.entries.map((e) => e.text)).toEqual(['normal (a2)']);
    await s.loadFinished(1000);
    expect(ran).toEqual(['kill-agent active', 'resume-agent a1', 'restart-broker', 'start-agent a3']);
  });

  it('tells on the timeline a step whose event did not come, and never runs it once the run is over', async () => {
    const { r1, timeline, ran } = await narrated();
    const s = new Schedule(steps([{ at: 'switch.replaying', do: 'restart-database' }]), async (x) => void ran.push(x.label), timeline);
    await s.loadFinished(20);
    expect(timeline.entries.map((e) => e.text)).toEqual(['restart-database still waits: no switch.replaying within 0.02 s of the load\'s end']);
    s.close();
    r1.tell('switch.phase', { assignment: { agentId: 'a2', epoch: 2, previousAgent: 'a1' }, phase: 'replaying' });
    await new Promise((x) => setImmediate(x));
    expect(ran).toEqual([]);
  });
});

describe('settling', () => {
  const sim = () => ({ applied: [] as Array<{ seq: number | null }>, events: new EventEmitter() });
  const apply = (d: ReturnType<typeof sim>, seq: number) => (d.applied.push({ seq }), d.events.emit('applied', { seq }));

  it('waits for every accepted seq to be applied or dead-lettered, from the devices\' and runtimes\' events', async () => {
    const { f, start } = fleet();
    const r1 = await start('r1');
    const dead = new DeadLetterLog(f);
    const [d1, d2] = [sim(), sim()];
    apply(d1, 1);
    r1.tell('message.dead-lettered', { deviceId: 'fw2', seq: 1, reason: 'r', agentId: 'a1' });
    const devices = [{ id: 'fw1', sim: d1 as unknown as DeviceSimulator }, { id: 'fw2', sim: d2 as unknown as DeviceSimulator }];
    const left = outstanding(devices, new Map([['fw1', [1, 2]], ['fw2', [1, 2, 3]]]), dead);
    const settled = until(left.changed, 'change', left.settled, 1000, 'settled');
    apply(d1, 2);
    apply(d2, 2);
    expect(left.settled()).toBe(false);
    r1.tell('message.dead-lettered', { deviceId: 'fw2', seq: 3, reason: 'r', agentId: 'a1' });
    await expect(settled).resolves.toBe(true);
    left.close();
    expect(d1.events.listenerCount('applied')).toBe(0);
  });
});
