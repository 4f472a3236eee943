import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadScenario, parseScenario } from '../../src/tools/scenario/schema.ts';

const dir = fileURLToPath(new URL('../../scripts/scenarios/', import.meta.url));
const base = { name: 'x', agents: ['a1', 'a2'] };

describe('scenario files', () => {
  it.each(readdirSync(dir).filter((f) => f.endsWith('.json')))('bundled %s is valid and named after its file', (f) => {
    expect(loadScenario(dir + f).name).toBe(f.replace(/\.json$/, ''));
  });

  it('fills defaults', () => {
    const s = parseScenario({ name: 'tiny' }, 'tiny.json');
    expect(s).toMatchObject({ devices: { count: 4, fencesByEpoch: true }, agents: ['agent-1', 'agent-2'], runtimes: ['runtime-1'], load: { messages: 4000, rate: 1000 }, expect: { switches: null, deadLetters: 0 } });
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
