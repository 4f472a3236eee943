/**
 * Scenario files: a topology, a load, a timeline of faults and operator actions, and the checks to
 * run. Validated before anything starts; every error names the file and the field. The timeline's
 * steps are read in schema-steps.ts, each field by schema-reader.ts.
 */
import { readFileSync } from 'node:fs';
import { BatonError } from '../../errors.ts';
import { Reader } from './schema-reader.ts';
import { readStep, type Cast, type Step } from './schema-steps.ts';

export type { Action, OperatorAction, Step, When, WhenEvent } from './schema-steps.ts';
export { cueOf, isOperatorAction } from './schema-steps.ts';

export interface Scenario {
  name: string;
  description: string;
  devices: { count: number; latencyMs: number; errorRate: number; fencesByEpoch: boolean };
  /** agent ids; the first registered becomes active */
  agents: string[];
  /** how the agents are run: `onPermanent` is passed as `--on-permanent` (null: the poison load skips, any other load takes the agent's default, block) */
  agentOptions: { onPermanent: 'block' | 'skip' | null };
  /** runtime ids; the first started leads */
  runtimes: string[];
  load: { messages: number; rate: number; shape: 'policy-rules' | 'poison'; poisonEvery: number };
  timeline: Step[];
  /**
   * `retried` / `skipped`: how many dead letters an operator's unblock resolved so (null: not checked);
   * a retried seq must then be applied once, in its place, a skipped one never
   */
  expect: { switches: number | null; deadLetters: number; maxDuplicatesPerDevice: number; retried: number | null; skipped: number | null };
  /** ms to wait for the devices to catch up after the load */
  settleMs: number;
  managementApi: boolean;
}

const TOP = ['name', 'description', 'devices', 'agents', 'agentOptions', 'runtimes', 'load', 'timeline', 'expect', 'settleMs', 'managementApi'];

/** Everything but the timeline, with its defaults. */
function readScenario(r: Reader, top: Record<string, unknown>): Scenario {
  const d = r.obj(top.devices ?? {}, 'devices', ['count', 'latencyMs', 'errorRate', 'fencesByEpoch']);
  const ao = r.obj(top.agentOptions ?? {}, 'agentOptions', ['onPermanent']);
  const l = r.obj(top.load ?? {}, 'load', ['messages', 'rate', 'shape', 'poisonEvery']);
  const e = r.obj(top.expect ?? {}, 'expect', ['switches', 'deadLetters', 'maxDuplicatesPerDevice', 'retried', 'skipped']);
  const orNull = (v: unknown, field: string) => (v === undefined ? null : r.int(v, field, 0, 1_000_000));
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
    agentOptions: { onPermanent: ao.onPermanent === undefined ? null : r.oneOf(ao.onPermanent, 'agentOptions.onPermanent', ['block', 'skip'] as const) },
    runtimes: r.ids(top.runtimes, 'runtimes', ['runtime-1']),
    load: {
      messages: r.int(l.messages, 'load.messages', 1, 1_000_000, 4000),
      rate: r.int(l.rate, 'load.rate', 1, 100_000, 1000),
      shape: r.oneOf(l.shape, 'load.shape', ['policy-rules', 'poison'] as const, 'policy-rules'),
      poisonEvery: r.int(l.poisonEvery, 'load.poisonEvery', 2, 1_000_000, 500),
    },
    timeline: [],
    expect: {
      switches: orNull(e.switches, 'expect.switches'),
      deadLetters: r.int(e.deadLetters, 'expect.deadLetters', 0, 1_000_000, 0),
      maxDuplicatesPerDevice: r.int(e.maxDuplicatesPerDevice, 'expect.maxDuplicatesPerDevice', 0, 1000, 0),
      retried: orNull(e.retried, 'expect.retried'),
      skipped: orNull(e.skipped, 'expect.skipped'),
    },
    settleMs: r.int(top.settleMs, 'settleMs', 1000, 600_000, 90_000),
    managementApi: r.bool(top.managementApi, 'managementApi', false),
  };
}

/** The `--on-permanent` the agents are run with (null: the agent's default, block). */
export function onPermanentOf(s: Pick<Scenario, 'agentOptions' | 'load'>): 'block' | 'skip' | null {
  return s.agentOptions.onPermanent ?? (s.load.shape === 'poison' ? 'skip' : null);
}

/** A line blocks only when the agents block on a refusal: an unblock, or a step waiting for a block, would wait in vain under skip. */
function checkBlocking(r: Reader, s: Scenario): void {
  if (onPermanentOf(s) !== 'skip') return;
  const why = s.agentOptions.onPermanent === 'skip' ? 'agentOptions.onPermanent is "skip"' : 'the poison load runs them with onPermanent skip';
  for (const [i, step] of s.timeline.entries()) {
    const field = step.do === 'unblock' ? `timeline[${i}].do` : 'event' in step.at && step.at.event === 'device.blocked' ? `timeline[${i}].at` : null;
    if (field) r.fail(field, `needs a blocked line, but the agents skip what a device refuses (${why}), so no line ever blocks: set agentOptions.onPermanent to "block"`);
  }
}

/** Validates a parsed scenario; `file` names it in errors. */
export function parseScenario(raw: unknown, file: string): Scenario {
  const r = new Reader(file);
  const top = r.obj(raw, '', TOP);
  const s = readScenario(r, top);
  if (!Array.isArray(top.timeline ?? [])) r.fail('timeline', 'must be a list of steps');
  const cast: Cast = { agents: new Set(s.agents), runtimes: new Set(s.runtimes), started: new Set([...s.agents]), deviceCount: s.devices.count };
  for (const [i, step] of ((top.timeline as unknown[]) ?? []).entries()) s.timeline.push(readStep(r, step, i, cast, s.timeline.at(-1)?.at));
  checkBlocking(r, s);
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
