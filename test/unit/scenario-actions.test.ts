// A scenario's operator actions without the services: the leader carries them out (over a fake
// runtime process), a step waits for a device's line to block, a refused action fails the run with
// the runtime's message, and the checks judge retried and skipped seqs from the devices' logs.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import type { ActionResult } from '../../src/api.ts';
import type { DeviceSimulator } from '../../src/devices/simulator.ts';
import type { DeadLetterView } from '../../src/ports.ts';
import type { AgentProcesses } from '../../src/tools/scenario/agent-processes.ts';
import { checksOf } from '../../src/tools/scenario/checks.ts';
import { faultActor } from '../../src/tools/scenario/faults.ts';
import { Recovery } from '../../src/tools/scenario/recovery.ts';
import { operate } from '../../src/tools/scenario/runtime-process.ts';
import { Schedule } from '../../src/tools/scenario/schedule.ts';
import { parseScenario, type Step } from '../../src/tools/scenario/schema.ts';
import { narrate, Timeline } from '../../src/tools/scenario/timeline.ts';
import { fleet } from '../support/scenario-fleet.ts';

const base = { name: 'x', agents: ['a1', 'a2'] };
const steps = (timeline: unknown[]): Step[] => parseScenario({ ...base, timeline }, 'x.json').timeline;
const blocked = (deviceId: string, seq: number) => ({ deviceId, agentId: 'a1', line: { deviceId, state: 'blocked', seq, status: 404, response: 'no', reason: 'refused', since: 0 } });
const tick = () => new Promise((x) => setImmediate(x));

/** A fleet with r1 leading and r2 standing by, told on a timeline. */
async function led() {
  const { f, start } = fleet();
  const r1 = await start('r1');
  const r2 = await start('r2');
  r1.tell('leader.won', { runtimeId: 'r1' });
  const timeline = new Timeline();
  narrate(f, timeline);
  return { f, r1, r2, timeline };
}

describe('operator actions through the runtime fleet', () => {
  it('go to the leader and come back with its answer; a refusal is the answer', async () => {
    const { f, r1, r2 } = await led();
    expect(await f.act({ do: 'unblock', device: 'fw1', action: 'retry' })).toEqual({ ok: true, outcome: 'done', detail: 'unblock done' });
    expect(r1.sent).toEqual([{ type: 'action', id: expect.any(Number), action: { do: 'unblock', device: 'fw1', action: 'retry' } }]);
    expect(r2.sent).toEqual([]);
    r1.answerAction = (m) => ({ type: 'action-result', id: m.id, ok: false, code: 'not-blocked', message: 'device fw1 is not blocked' });
    expect(await f.act({ do: 'unblock', device: 'fw1', action: 'skip' })).toEqual({ ok: false, code: 'not-blocked', message: 'device fw1 is not blocked' });
    expect(r1.sent).toHaveLength(2);
  });

  it('a runtime that no longer leads refuses it: the next leader is asked', async () => {
    const { f, r1, r2 } = await led();
    r1.answerAction = (m) => {
      // the refusal can come before the news of who leads now
      queueMicrotask(() => (r1.tell('leader.lost', { runtimeId: 'r1', holder: 'r2' }), r2.tell('leader.won', { runtimeId: 'r2' })));
      return { type: 'action-result', id: m.id, ok: false, code: 'not-leader', message: 'r1 does not lead' };
    };
    expect(await f.act({ do: 'handover', to: 'a2' })).toMatchObject({ ok: true });
    expect(r2.sent).toEqual([{ type: 'action', id: expect.any(Number), action: { do: 'handover', to: 'a2' } }]);
  });

  it('the runtime process maps each action onto the Runtime API, saying who asked', async () => {
    const calls: unknown[][] = [];
    const result = (action: string) => ({ action, target: 'x', outcome: 'done', detail: '', auditId: 1 }) as unknown as ActionResult;
    const runtime = {
      unblock: async (...a: unknown[]) => (calls.push(['unblock', ...a]), result('unblock')),
      pause: async (...a: unknown[]) => (calls.push(['pause', ...a]), result('pause')),
      resume: async (...a: unknown[]) => (calls.push(['resume', ...a]), result('resume')),
      handover: async (...a: unknown[]) => (calls.push(['handover', ...a]), result('handover')),
    };
    for (const s of steps([{ at: '1%', do: 'unblock', device: 'fw2', action: 'skip' }, { at: '2%', do: 'pause', device: 'fw3' }, { at: '3%', do: 'resume', device: 'fw3' }, { at: '4%', do: 'handover' }, { at: '5%', do: 'handover', to: 'a2' }])) {
      await operate(runtime, s as Parameters<typeof operate>[1]);
    }
    expect(calls).toEqual([
      ['unblock', 'fw2', { action: 'skip', by: 'scenario' }],
      ['pause', 'fw3', { by: 'scenario' }],
      ['resume', 'fw3', { by: 'scenario' }],
      ['handover', { by: 'scenario' }],
      ['handover', { to: 'a2', by: 'scenario' }],
    ]);
    // a refusal thrown at once (as an unbuilt action does) comes back as a rejection, not a crash of the process
    const throwing = { ...runtime, pause: () => { throw Object.assign(new Error('not built'), { code: 'unsupported' }); } };
    await expect(operate(throwing, { do: 'pause', device: 'fw1' })).rejects.toMatchObject({ code: 'unsupported' });
  });
});

describe('a step on device.blocked', () => {
  it('runs when the leader reports that device blocked, not another device, not a runtime that stands by', async () => {
    const { r1, r2, timeline } = await led();
    const ran: string[] = [];
    const s = new Schedule(steps([{ at: { event: 'device.blocked', device: 'fw2' }, do: 'unblock', device: 'fw2', action: 'skip' }, { at: 'device.blocked', do: 'pause', device: 'fw4' }]), async (x) => void ran.push(x.label), timeline);
    r2.tell('device.line', blocked('fw2', 7));
    await tick();
    expect(ran).toEqual([]);
    r1.tell('device.line', blocked('fw1', 3));
    await tick();
    expect(ran).toEqual(['pause fw4']);
    r1.tell('device.line', blocked('fw2', 7));
    await tick();
    expect(ran).toEqual(['pause fw4', 'unblock fw2 skip']);
    r1.tell('device.line', { deviceId: 'fw2', agentId: 'a1', line: null });
    r1.tell('device.line', { deviceId: 'fw3', agentId: 'a1', line: { deviceId: 'fw3', state: 'retrying', seq: 4, attempt: 2, reason: 'r', since: 0 } });
    expect(timeline.entries.filter((e) => e.kind === 'device').map((e) => e.text)).toEqual(['fw1 blocked at seq 3 (device answered 404)', 'fw2 blocked at seq 7 (device answered 404)', 'fw2 flows']);
    await s.loadFinished(1000);
  });

  it('a refused action fails the run with the runtime\'s message: the load stops at its next message, loadFinished throws', async () => {
    const { f, r1, timeline } = await led();
    r1.answerAction = (m) => ({ type: 'action-result', id: m.id, ok: false, code: 'not-blocked', message: 'device fw1 is not blocked: nothing to retry' });
    const act = faultActor({ timeline, agents: {} as AgentProcesses, runtimes: f, sims: [], recovery: new Recovery() });
    const s = new Schedule(steps([{ at: { event: 'device.blocked', device: 'fw1' }, do: 'unblock', device: 'fw1', action: 'retry' }]), act, timeline);
    await s.runDue(1, 10, 0);
    r1.tell('device.line', blocked('fw1', 3));
    const refused = { code: 'scenario-step-failed', message: expect.stringMatching(/^step "unblock fw1 retry" failed: the runtime refused it \(not-blocked\): device fw1 is not blocked: nothing to retry; the run stops/) };
    await expect(s.loadFinished(1000)).rejects.toMatchObject(refused);
    await expect(s.runDue(2, 10, 0)).rejects.toMatchObject(refused);
    expect(() => s.throwIfFailed()).toThrow(/unblock fw1 retry/);
  });

  it('a done action is noted on the timeline with its outcome', async () => {
    const { f, timeline } = await led();
    const act = faultActor({ timeline, agents: {} as AgentProcesses, runtimes: f, sims: [], recovery: new Recovery() });
    await act(steps([{ at: '50%', do: 'handover', to: 'a2' }])[0]!);
    expect(timeline.entries.map((e) => e.text)).toEqual(['handover to a2', 'handover to a2: done (handover done)']);
  });
});

describe('the checks of retried and skipped seqs', () => {
  const s = parseScenario({ ...base, expect: { deadLetters: 2, retried: 1, skipped: 1 } }, 'x.json');
  const dead = (deviceId: string, seq: number, kind: 'retried' | 'skipped' | null): DeadLetterView => ({ id: seq, deviceId, seq, epoch: 1, agentId: 'a1', reason: 'device answered 404', status: 404, response: null, payload: '{}', at: 0, resolution: kind && { kind, by: 'scenario', at: 0, detail: '' } });
  const sim = (seqs: number[]) => ({ applied: seqs.map((seq) => ({ seq, epoch: 1 })), events: new EventEmitter() }) as unknown as DeviceSimulator;
  const judge = (fw1: number[], fw2: number[], deadLetters = [dead('fw1', 3, 'retried'), dead('fw2', 2, 'skipped')]) =>
    Object.fromEntries(checksOf(s, { devices: [{ id: 'fw1', sim: sim(fw1) }, { id: 'fw2', sim: sim(fw2) }], accepted: new Map([['fw1', [1, 2, 3, 4]], ['fw2', [1, 2, 3]]]), deadLetters, switches: [] }).map((c) => [c.name, c]));

  it('hold when the retried seq is applied once in its place and the skipped one never', () => {
    const c = judge([1, 2, 3, 4], [1, 3]);
    expect(Object.values(c).every((x) => x.ok)).toBe(true);
    expect(c['dead letters as expected']).toMatchObject({ resolutions: { retried: 1, skipped: 1 } });
  });

  it('fail when the retried seq is missing, applied out of place or twice, or the skipped one applied', () => {
    expect(judge([1, 2, 4], [1, 3])['nothing lost']).toMatchObject({ ok: false, lost: 1 });
    expect(judge([1, 2, 4], [1, 3])['retried applied in place']).toMatchObject({ ok: false, misplaced: 'fw1#3' });
    expect(judge([1, 2, 4, 3], [1, 3])['retried applied in place']).toMatchObject({ ok: false, misplaced: 'fw1#3' });
    expect(judge([1, 2, 3, 3, 4], [1, 3])['retried applied in place']).toMatchObject({ ok: false, misplaced: 'fw1#3' });
    expect(judge([1, 2, 3, 4], [1, 2, 3])['skipped never applied']).toMatchObject({ ok: false, applied: 'fw2#2' });
  });

  it('fail when the dead letters were not settled as expected (still open: neither retried nor skipped)', () => {
    const c = judge([1, 2, 4], [1, 3], [dead('fw1', 3, null), dead('fw2', 2, null)]);
    expect(c['retried applied in place']).toMatchObject({ ok: false, retried: 0, expected: 1 });
    expect(c['skipped never applied']).toMatchObject({ ok: false, skipped: 0, expected: 1 });
    expect(c['nothing lost']).toMatchObject({ ok: true });
  });

  it('are not run when the scenario does not expect them', () => {
    const plain = parseScenario(base, 'x.json');
    const names = checksOf(plain, { devices: [{ id: 'fw1', sim: sim([1]) }], accepted: new Map([['fw1', [1]]]), deadLetters: [], switches: [] }).map((c) => c.name);
    expect(names).not.toContain('retried applied in place');
    expect(names).not.toContain('skipped never applied');
  });
});
