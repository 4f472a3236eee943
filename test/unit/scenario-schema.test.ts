import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScenario, onPermanentOf, parseScenario } from '../../src/tools/scenario/schema.ts';

const dir = fileURLToPath(new URL('../../scripts/scenarios/', import.meta.url));
const base = { name: 'x', agents: ['a1', 'a2'] };

describe('scenario files', () => {
  it.each(readdirSync(dir).filter((f) => f.endsWith('.json')))('bundled %s is valid and named after its file', (f) => {
    expect(loadScenario(dir + f).name).toBe(f.replace(/\.json$/, ''));
  });

  it('fills defaults', () => {
    const s = parseScenario({ name: 'tiny' }, 'tiny.json');
    expect(s).toMatchObject({ devices: { count: 4, fencesByEpoch: true }, agents: ['agent-1', 'agent-2'], runtimes: ['runtime-1'], load: { messages: 4000, rate: 1000 }, expect: { switches: null, deadLetters: 0, retried: null, skipped: null }, agentOptions: { onPermanent: null } });
  });

  it('reads operator actions, steps on a device\'s line blocking, the refuse fault, agentOptions and the unblock expectations', () => {
    const s = loadScenario(`${dir}operator-actions.json`);
    expect(s.agentOptions).toEqual({ onPermanent: 'block' });
    expect(s.expect).toMatchObject({ switches: 1, deadLetters: 2, retried: 1, skipped: 1, maxDuplicatesPerDevice: 0 });
    expect(s.timeline.map((t) => t.label)).toEqual(['device-fault fw1', 'unblock fw1 retry', 'pause fw3', 'resume fw3', 'handover to agent-2', 'device-fault fw2', 'unblock fw2 skip']);
    expect(s.timeline[0]).toMatchObject({ do: 'device-fault', faults: { refuse: { status: 404, count: 1 } } });
    expect(s.timeline[1]).toMatchObject({ at: { event: 'device.blocked', device: 'fw1' }, do: 'unblock', device: 'fw1', action: 'retry' });
    expect(s.timeline[4]).toMatchObject({ at: { percent: 50 }, do: 'handover', to: 'agent-2' });
    const any = parseScenario({ ...base, timeline: [{ at: 'device.blocked', do: 'handover' }, { at: { event: 'load.done' }, do: 'pause', device: 'fw1' }, { at: '5%', do: 'device-fault', device: 'fw1', faults: { refuse: {} } }] }, 'f.json');
    expect(any.timeline.map((t) => [t.at, t.label])).toEqual([[{ event: 'device.blocked' }, 'handover'], [{ event: 'load.done' }, 'pause fw1'], [{ percent: 5 }, 'device-fault fw1']]);
    expect(any.timeline[2]).toMatchObject({ faults: { refuse: { status: 422, count: 1 } } });
  });

  it('runs agents with --on-permanent as asked; the poison load skips unless told otherwise', () => {
    expect(onPermanentOf(parseScenario(base, 'f.json'))).toBeNull();
    expect(onPermanentOf(parseScenario({ ...base, load: { shape: 'poison' } }, 'f.json'))).toBe('skip');
    expect(onPermanentOf(parseScenario({ ...base, load: { shape: 'poison' }, agentOptions: { onPermanent: 'block' } }, 'f.json'))).toBe('block');
    expect(onPermanentOf(parseScenario({ ...base, agentOptions: { onPermanent: 'skip' } }, 'f.json'))).toBe('skip');
  });

  it('reads times as a share of the load, ms, or an event', () => {
    const s = parseScenario({ ...base, timeline: [{ at: '25%', do: 'kill-agent', agent: 'active' }, { at: '1500ms', do: 'start-agent', agent: 'a3' }, { at: 'switch.completed', do: 'resume-agent', agent: 'a1' }] }, 'f.json');
    expect(s.timeline.map((t) => t.at)).toEqual([{ percent: 25 }, { ms: 1500 }, { event: 'switch.completed' }]);
    expect(s.timeline.map((t) => t.label)).toEqual(['kill-agent active', 'start-agent a3', 'resume-agent a1']);
  });

  it.each([
    [{ ...base, colour: 'red' }, /f\.json: "colour" is not a known field/],
    [{ ...base, devices: { count: 'four' } }, /"devices\.count" must be an integer from 1 to 64 \(got "four"\)/],
    [{ ...base, devices: { count: 2, speed: 1 } }, /"devices\.speed" is not a known field/],
    [{ ...base, load: { messages: -5 } }, /"load\.messages" must be an integer/],
    [{ ...base, timeline: [{ at: 'soon', do: 'kill-agent', agent: 'a1' }] }, /"timeline\[0\]\.at" must be "N%"/],
    [{ ...base, timeline: [{ at: '10%', do: 'explode' }] }, /"timeline\[0\]\.do" "explode" is not an action/],
    [{ ...base, timeline: [{ at: '10%', do: 'kill-agent', agent: 'ghost' }] }, /"timeline\[0\]\.agent" names no agent of this scenario/],
    [{ ...base, timeline: [{ at: '50%', do: 'kill-agent', agent: 'a1' }, { at: '20%', do: 'resume-agent', agent: 'a1' }] }, /"timeline\[1\]\.at" comes before the step above it/],
    [{ ...base, timeline: [{ at: '10%', do: 'start-agent', agent: 'a1' }] }, /agent "a1" is already running/],
    [{ ...base, timeline: [{ at: '10%', do: 'device-fault', device: 'fw9', faults: {} }] }, /"timeline\[0\]\.device" must name a device fw1\.\.fw4/],
    [{ ...base, timeline: [{ at: '10%', do: 'kill-runtime', runtime: 'leader', phase: 'lunch' }] }, /"timeline\[0\]\.phase" must be "switching", "draining" or "replaying"/],
    [{ ...base, timeline: [{ at: '10%', do: 'unblock', device: 'fw1' }] }, /"timeline\[0\]\.action" must be a non-empty string/],
    [{ ...base, timeline: [{ at: '10%', do: 'unblock', device: 'fw1', action: 'force' }] }, /"timeline\[0\]\.action" must be "retry" or "skip" \(got "force"\)/],
    [{ ...base, timeline: [{ at: '10%', do: 'pause', device: 'fw7' }] }, /"timeline\[0\]\.device" must name a device fw1\.\.fw4/],
    [{ ...base, timeline: [{ at: '10%', do: 'resume' }] }, /"timeline\[0\]\.device" must be a non-empty string/],
    [{ ...base, timeline: [{ at: '10%', do: 'handover', to: 'ghost' }] }, /"timeline\[0\]\.to" names no agent of this scenario \(agents: a1, a2\); leave it out/],
    [{ ...base, timeline: [{ at: '10%', do: 'handover', to: 'a2' }, { at: '20%', do: 'explode' }] }, /"timeline\[1\]\.do" "explode" is not an action \(.*unblock, pause, resume, handover\)/],
    [{ ...base, timeline: [{ at: '10%', do: 'handover', action: 'retry' }] }, /"timeline\[0\]\.action" is not a field of handover/],
    [{ ...base, timeline: [{ at: '10%', do: 'kill-agent', agent: 'a1', phase: 'draining' }] }, /"timeline\[0\]\.phase" is not a field of kill-agent/],
    [{ ...base, timeline: [{ at: { event: 'device.blocked', device: 'fw5' }, do: 'unblock', device: 'fw1', action: 'skip' }] }, /"timeline\[0\]\.at\.device" must name a device fw1\.\.fw4/],
    [{ ...base, timeline: [{ at: { event: 'switch.completed', device: 'fw1' }, do: 'restart-broker' }] }, /"timeline\[0\]\.at\.device" is only for "device\.blocked"/],
    [{ ...base, timeline: [{ at: { event: 'device.unblocked' }, do: 'restart-broker' }] }, /"timeline\[0\]\.at\.event" must be "switch\.completed", .* or "device\.blocked" \(got "device\.unblocked"\)/],
    [{ ...base, timeline: [{ at: { event: 'device.blocked', when: 'now' }, do: 'restart-broker' }] }, /"timeline\[0\]\.at\.when" is not a known field/],
    [{ ...base, timeline: [{ at: '10%', do: 'device-fault', device: 'fw1', faults: { refuse: { status: 503, count: 1 } } }] }, /"timeline\[0\]\.faults\.refuse\.status" must be an integer from 400 to 499/],
    [{ ...base, timeline: [{ at: '10%', do: 'device-fault', device: 'fw1', faults: { refuse: { status: 429 } } }] }, /"timeline\[0\]\.faults\.refuse\.status" must not be 429: the agent takes it as transient/],
    [{ ...base, timeline: [{ at: '10%', do: 'device-fault', device: 'fw1', faults: { refuse: { status: 404, count: 0 } } }] }, /"timeline\[0\]\.faults\.refuse\.count" must be an integer from 1/],
    [{ ...base, timeline: [{ at: '10%', do: 'device-fault', device: 'fw1', faults: { refuse: { status: 404, times: 2 } } }] }, /"timeline\[0\]\.faults\.refuse\.times" is not a known field/],
    [{ ...base, agentOptions: { onPermanent: 'retry' } }, /"agentOptions\.onPermanent" must be "block" or "skip"/],
    [{ ...base, agentOptions: { prefetch: 5 } }, /"agentOptions\.prefetch" is not a known field/],
    [{ ...base, expect: { retried: -1 } }, /"expect\.retried" must be an integer from 0/],
    [{ ...base, load: { shape: 'poison' }, timeline: [{ at: '10%', do: 'unblock', device: 'fw1', action: 'retry' }] }, /"timeline\[0\]\.do" needs a blocked line, but the agents skip what a device refuses \(the poison load runs them with onPermanent skip\).*set agentOptions\.onPermanent to "block"/],
    [{ ...base, agentOptions: { onPermanent: 'skip' }, timeline: [{ at: 'device.blocked', do: 'restart-broker' }] }, /"timeline\[0\]\.at" needs a blocked line, .*\(agentOptions\.onPermanent is "skip"\)/],
  ])('refuses a bad file before anything starts, naming the field (%#)', (raw, message) => {
    expect(() => parseScenario(raw, 'f.json')).toThrow(message);
    try {
      parseScenario(raw, 'f.json');
    } catch (e) {
      expect((e as { code: string }).code).toBe('invalid-scenario');
    }
  });

  it('names the file when it is missing or not JSON', () => {
    expect(() => loadScenario('/nonexistent/s.json')).toThrow(/\/nonexistent\/s\.json: cannot be read \(ENOENT\)/);
  });
});
