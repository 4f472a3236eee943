/**
 * Scenario files: a topology, a load, a timeline of faults and the checks to run. Validated
 * before anything starts; every error names the file and the field.
 */
import { readFileSync } from 'node:fs';
import { BatonError } from '../../errors.ts';
import type { DeviceFaults } from '../../devices/simulator.ts';

export type Action =
  | { do: 'kill-agent' | 'stop-agent' | 'resume-agent'; agent: string }
  | { do: 'start-agent'; agent: string }
  | { do: 'kill-all-agents' }
  | { do: 'kill-runtime'; runtime: string; phase?: 'switching' | 'draining' | 'replaying' }
  | { do: 'start-runtime'; runtime: string }
  | { do: 'device-fault'; device: string; faults: DeviceFaults }
  | { do: 'restart-broker' }
  | { do: 'restart-database' };

/** When a step runs: after a share of the load is dispatched, ms after the load began, or on an event. */
/** Events a step can wait for. */
const WHEN_EVENTS = ['switch.completed', 'switch.awaiting-candidate', 'switch.replaying', 'load.done'] as const;
export type When = { percent: number } | { ms: number } | { event: (typeof WHEN_EVENTS)[number] };

export type Step = Action & { at: When; label: string };

export interface Scenario {
  name: string;
  description: string;
  devices: { count: number; latencyMs: number; errorRate: number; fencesByEpoch: boolean };
  /** agent ids; the first registered becomes active */
  agents: string[];
  /** runtime ids; the first started leads */
  runtimes: string[];
  load: { messages: number; rate: number; shape: 'policy-rules' | 'poison'; poisonEvery: number };
  timeline: Step[];
  expect: { switches: number | null; deadLetters: number; maxDuplicatesPerDevice: number };
  /** ms to wait for the devices to catch up after the load */
  settleMs: number;
  managementApi: boolean;
}

const TOP = ['name', 'description', 'devices', 'agents', 'runtimes', 'load', 'timeline', 'expect', 'settleMs', 'managementApi'];

class Reader {
  constructor(private readonly file: string) {}
  fail(field: string, what: string): never {
    throw new BatonError('invalid-scenario', `${this.file}: "${field}" ${what}; nothing was started`, { file: this.file, field });
  }
  obj(v: unknown, field: string, known: string[]): Record<string, unknown> {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(field, 'must be an object');
    for (const k of Object.keys(v)) if (!known.includes(k)) this.fail(`${field ? field + '.' : ''}${k}`, `is not a known field (known: ${known.join(', ')})`);
    return v as Record<string, unknown>;
  }
  int(v: unknown, field: string, min: number, max: number, dflt?: number): number {
    if (v === undefined && dflt !== undefined) return dflt;
    if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) this.fail(field, `must be an integer from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return v as number;
  }
  num(v: unknown, field: string, min: number, max: number, dflt: number): number {
    if (v === undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(field, `must be a number from ${min} to ${max} (got ${JSON.stringify(v)})`);
    return v;
  }
  str(v: unknown, field: string, dflt?: string): string {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string' || v === '') this.fail(field, 'must be a non-empty string');
    return v;
  }
  bool(v: unknown, field: string, dflt: boolean): boolean {
    if (v === undefined) return dflt;
    if (typeof v !== 'boolean') this.fail(field, 'must be true or false');
    return v;
  }
  ids(v: unknown, field: string, dflt: string[]): string[] {
    if (v === undefined) return dflt;
    if (Number.isSafeInteger(v)) return Array.from({ length: this.int(v, field, 1, 10) }, (_, i) => `${field.replace(/s$/, '')}-${i + 1}`);
    if (!Array.isArray(v) || v.length === 0) this.fail(field, 'must be a count or a non-empty list of ids');
    for (const [i, id] of v.entries()) if (typeof id !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,40}$/.test(id)) this.fail(`${field}[${i}]`, 'must be an id of letters, digits, ".", "_" or "-"');
    if (new Set(v).size !== v.length) this.fail(field, 'has an id twice');
    return v as string[];
  }
}

function when(r: Reader, v: unknown, field: string): When {
  if (typeof v === 'string') {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (pct) return { percent: r.num(Number(pct[1]), field, 0, 100, 0) };
    const ms = /^(\d+)ms$/.exec(v);
    if (ms) return { ms: Number(ms[1]) };
    const event = WHEN_EVENTS.find((e) => e === v);
    if (event) return { event };
  }
  return r.fail(field, `must be "N%" (of the load), "Nms" (after the load began), or one of ${WHEN_EVENTS.map((e) => `"${e}"`).join(', ')}`);
}

/** Everything but the timeline, with its defaults. */
function readScenario(r: Reader, top: Record<string, unknown>): Scenario {
  const d = r.obj(top.devices ?? {}, 'devices', ['count', 'latencyMs', 'errorRate', 'fencesByEpoch']);
  const l = r.obj(top.load ?? {}, 'load', ['messages', 'rate', 'shape', 'poisonEvery']);
  const e = r.obj(top.expect ?? {}, 'expect', ['switches', 'deadLetters', 'maxDuplicatesPerDevice']);
  return {
    name: r.str(top.name, 'name'),
    description: r.str(top.description, 'description', ''),
    devices: {
      count: r.int(d.count, 'devices.count', 1, 64, 4),
      latencyMs: r.int(d.latencyMs, 'devices.latencyMs', 0, 10_000, 0),
      errorRate: r.num(d.errorRate, 'devices.errorRate', 0, 0.9, 0),
      fencesByEpoch: r.bool(d.fencesByEpoch, 'devices.fencesByEpoch', true),
    },
    agents: r.ids(top.agents, 'agents', ['agent-1', 'agent-2']),
    runtimes: r.ids(top.runtimes, 'runtimes', ['runtime-1']),
    load: {
      messages: r.int(l.messages, 'load.messages', 1, 1_000_000, 4000),
      rate: r.int(l.rate, 'load.rate', 1, 100_000, 1000),
      shape: (() => {
        const v = r.str(l.shape, 'load.shape', 'policy-rules');
        if (v !== 'policy-rules' && v !== 'poison') r.fail('load.shape', 'must be "policy-rules" or "poison"');
        return v as 'policy-rules' | 'poison';
      })(),
      poisonEvery: r.int(l.poisonEvery, 'load.poisonEvery', 2, 1_000_000, 500),
    },
    timeline: [],
    expect: {
      switches: e.switches === undefined ? null : r.int(e.switches, 'expect.switches', 0, 100),
      deadLetters: r.int(e.deadLetters, 'expect.deadLetters', 0, 1_000_000, 0),
      maxDuplicatesPerDevice: r.int(e.maxDuplicatesPerDevice, 'expect.maxDuplicatesPerDevice', 0, 1000, 0),
    },
    settleMs: r.int(top.settleMs, 'settleMs', 1000, 600_000, 90_000),
    managementApi: r.bool(top.managementApi, 'managementApi', false),
  };
}

/** What the steps so far leave known: the agents (those started by a step too) and runtimes a step may name. */
interface Cast {
  agents: Set<string>;
  runtimes: Set<string>;
  started: Set<string>;
  deviceCount: number;
}

/** The action of step `f` (`act` is its `do`), checked against the cast. */
function readAction(r: Reader, step: Record<string, unknown>, f: string, act: string, cast: Cast): Action {
  const agent = () => {
    const a = r.str(step.agent, `${f}.agent`);
    if (a !== 'active' && a !== 'stopped' && !cast.agents.has(a)) r.fail(`${f}.agent`, `names no agent of this scenario (agents: ${[...cast.agents].join(', ')}, "active", or "stopped": the one the last stop-agent stopped)`);
    return a;
  };
  const runtime = () => {
    const id = r.str(step.runtime, `${f}.runtime`);
    if (id !== 'leader' && !cast.runtimes.has(id)) r.fail(`${f}.runtime`, `names no runtime of this scenario (runtimes: ${[...cast.runtimes].join(', ')}, or "leader")`);
    return id;
  };
  switch (act) {
    case 'kill-agent':
    case 'stop-agent':
    case 'resume-agent':
      return { do: act, agent: agent() };
    case 'start-agent': {
      const id = r.str(step.agent, `${f}.agent`);
      if (cast.started.has(id)) r.fail(`${f}.agent`, `agent "${id}" is already running at that point (start-agent is for a new agent)`);
      cast.started.add(id);
      cast.agents.add(id);
      return { do: act, agent: id };
    }
    case 'kill-all-agents':
    case 'restart-broker':
    case 'restart-database':
      return { do: act };
    case 'kill-runtime': {
      const phase = step.phase === undefined ? undefined : r.str(step.phase, `${f}.phase`);
      if (phase !== undefined && !['switching', 'draining', 'replaying'].includes(phase)) r.fail(`${f}.phase`, 'must be "switching", "draining" or "replaying"');
      return phase ? { do: act, runtime: runtime(), phase: phase as 'switching' } : { do: act, runtime: runtime() };
    }
    case 'start-runtime':
      return { do: act, runtime: r.str(step.runtime, `${f}.runtime`) };
    case 'device-fault':
      return { do: act, device: readDevice(r, step, f, cast.deviceCount), faults: readFaults(r, step, f) };
    default:
      return r.fail(`${f}.do`, `"${act}" is not an action (kill-agent, stop-agent, resume-agent, start-agent, kill-all-agents, kill-runtime, start-runtime, device-fault, restart-broker, restart-database)`);
  }
}

function readDevice(r: Reader, step: Record<string, unknown>, f: string, count: number): string {
  const dev = r.str(step.device, `${f}.device`);
  if (!/^fw\d+$/.test(dev) || Number(dev.slice(2)) < 1 || Number(dev.slice(2)) > count) r.fail(`${f}.device`, `must name a device fw1..fw${count}`);
  return dev;
}

function readFaults(r: Reader, step: Record<string, unknown>, f: string): DeviceFaults {
  const ff = r.obj(step.faults, `${f}.faults`, ['latencyMs', 'errorRate', 'errorStatus', 'hang']);
  return {
    latencyMs: r.int(ff.latencyMs, `${f}.faults.latencyMs`, 0, 60_000, 0),
    errorRate: r.num(ff.errorRate, `${f}.faults.errorRate`, 0, 1, 0),
    errorStatus: r.int(ff.errorStatus, `${f}.faults.errorStatus`, 400, 599, 503),
    hang: r.bool(ff.hang, `${f}.faults.hang`, false),
  };
}

/** Step `i` of the timeline; `prev` is the step above it (steps given as a share of the load come in order). */
function readStep(r: Reader, raw: unknown, i: number, cast: Cast, prev: When | undefined): Step {
  const f = `timeline[${i}]`;
  const step = r.obj(raw, f, ['at', 'do', 'agent', 'runtime', 'phase', 'device', 'faults']);
  const at = when(r, step.at, `${f}.at`);
  const act = r.str(step.do, `${f}.do`);
  const a = readAction(r, step, f, act, cast);
  if ('ms' in at && at.ms > 600_000) r.fail(`${f}.at`, 'is past the longest run (600000ms)');
  if (prev && 'percent' in prev && 'percent' in at && at.percent < prev.percent) r.fail(`${f}.at`, `comes before the step above it (${prev.percent}%): list the timeline in order`);
  const label = `${act}${'agent' in a ? ` ${a.agent}` : ''}${'runtime' in a ? ` ${a.runtime}` : ''}${'device' in a ? ` ${a.device}` : ''}${'phase' in a && a.phase ? ` in ${a.phase}` : ''}`;
  return { ...a, at, label } as Step;
}

/** Validates a parsed scenario; `file` names it in errors. */
export function parseScenario(raw: unknown, file: string): Scenario {
  const r = new Reader(file);
  const top = r.obj(raw, '', TOP);
  const s = readScenario(r, top);
  if (!Array.isArray(top.timeline ?? [])) r.fail('timeline', 'must be a list of steps');
  const cast: Cast = { agents: new Set(s.agents), runtimes: new Set(s.runtimes), started: new Set([...s.agents]), deviceCount: s.devices.count };
  for (const [i, step] of ((top.timeline as unknown[]) ?? []).entries()) s.timeline.push(readStep(r, step, i, cast, s.timeline.at(-1)?.at));
  return s;
}

/** Reads and validates a scenario file (JSON). */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BatonError('invalid-scenario', `${file}: cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new BatonError('invalid-scenario', `${file}: is not JSON (${(err as Error).message})`, { file });
  }
  return parseScenario(raw, file);
}
