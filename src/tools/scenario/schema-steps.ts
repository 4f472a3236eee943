/**
 * The timeline of a scenario file: when each step runs (a share of the load, ms after it began, or
 * an event) and what it does (a fault, or an operator action the leading runtime carries out),
 * checked against the cast the steps above it leave (agents started, devices configured).
 */
import type { DeviceFaults } from '../../devices/simulator.ts';
import type { Reader } from './schema-reader.ts';

/** An operator action, carried out by the leading runtime (`runtime.unblock`, `pause`, `resume`, `handover`). */
export type OperatorAction =
  | { do: 'unblock'; device: string; action: 'retry' | 'skip' }
  | { do: 'pause' | 'resume'; device: string }
  | { do: 'handover'; to?: string };

export type Action =
  | { do: 'kill-agent' | 'stop-agent' | 'resume-agent'; agent: string }
  | { do: 'start-agent'; agent: string }
  | { do: 'kill-all-agents' }
  | { do: 'kill-runtime'; runtime: string; phase?: 'switching' | 'draining' | 'replaying' }
  | { do: 'start-runtime'; runtime: string }
  | { do: 'device-fault'; device: string; faults: DeviceFaults }
  | { do: 'restart-broker' }
  | { do: 'restart-database' }
  | OperatorAction;

const OPERATOR_ACTIONS: ReadonlyArray<OperatorAction['do']> = ['unblock', 'pause', 'resume', 'handover'];
export const isOperatorAction = (a: Action): a is OperatorAction => (OPERATOR_ACTIONS as readonly string[]).includes(a.do);

/** Events a step can wait for; `device.blocked` (a device's line blocked, as the leading runtime reports it) may name the device. */
const WHEN_EVENTS = ['switch.completed', 'switch.awaiting-candidate', 'switch.replaying', 'load.done', 'device.blocked'] as const;
export type WhenEvent = (typeof WHEN_EVENTS)[number];
/** When a step runs: after a share of the load is dispatched, ms after the load began, or on an event. */
export type When = { percent: number } | { ms: number } | { event: WhenEvent; device?: string };

export type Step = Action & { at: When; label: string };

/** The name an event step waits for on the timeline's `stepEvents`: the event, or `event:device` for one device. */
export const cueOf = (at: { event: string; device?: string }): string => (at.device ? `${at.event}:${at.device}` : at.event);

/** What the steps so far leave known: the agents (those started by a step too) and runtimes a step may name. */
export interface Cast {
  agents: Set<string>;
  runtimes: Set<string>;
  started: Set<string>;
  deviceCount: number;
}

const WHEN_TEXT = `must be "N%" (of the load), "Nms" (after the load began), one of ${WHEN_EVENTS.map((e) => `"${e}"`).join(', ')}, or { "event": ..., "device": "fwN" } (device.blocked only)`;

function when(r: Reader, v: unknown, field: string, deviceCount: number): When {
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = r.obj(v, field, ['event', 'device']);
    const event = r.oneOf(o.event, `${field}.event`, WHEN_EVENTS);
    if (o.device === undefined) return { event };
    if (event !== 'device.blocked') r.fail(`${field}.device`, `is only for "device.blocked" (${event} concerns no one device)`);
    return { event, device: readDevice(r, o.device, `${field}.device`, deviceCount) };
  }
  if (typeof v === 'string') {
    const pct = /^(\d+(?:\.\d+)?)%$/.exec(v);
    if (pct) return { percent: r.num(Number(pct[1]), field, 0, 100, 0) };
    const ms = /^(\d+)ms$/.exec(v);
    if (ms) return { ms: Number(ms[1]) };
    const event = WHEN_EVENTS.find((e) => e === v);
    if (event) return { event };
  }
  return r.fail(field, WHEN_TEXT);
}

function readDevice(r: Reader, v: unknown, field: string, count: number): string {
  const dev = r.str(v, field);
  if (!/^fw\d+$/.test(dev) || Number(dev.slice(2)) < 1 || Number(dev.slice(2)) > count) r.fail(field, `must name a device fw1..fw${count}`);
  return dev;
}

function readFaults(r: Reader, step: Record<string, unknown>, f: string): DeviceFaults {
  const ff = r.obj(step.faults, `${f}.faults`, ['latencyMs', 'errorRate', 'errorStatus', 'hang', 'refuse']);
  const faults: DeviceFaults = {
    latencyMs: r.int(ff.latencyMs, `${f}.faults.latencyMs`, 0, 60_000, 0),
    errorRate: r.num(ff.errorRate, `${f}.faults.errorRate`, 0, 1, 0),
    errorStatus: r.int(ff.errorStatus, `${f}.faults.errorStatus`, 400, 599, 503),
    hang: r.bool(ff.hang, `${f}.faults.hang`, false),
  };
  if (ff.refuse === undefined) return faults;
  const rf = r.obj(ff.refuse, `${f}.faults.refuse`, ['status', 'count', 'match']);
  const status = r.int(rf.status, `${f}.faults.refuse.status`, 400, 499, 422);
  if (status === 429) r.fail(`${f}.faults.refuse.status`, 'must not be 429: the agent takes it as transient and retries (use errorRate with errorStatus 429 for that)');
  const count = r.int(rf.count, `${f}.faults.refuse.count`, 1, 1_000_000, 1);
  const match = rf.match === undefined ? undefined : r.str(rf.match, `${f}.faults.refuse.match`);
  return { ...faults, refuse: { status, count, ...(match ? { match } : {}) } };
}

/** The operator action of step `f` (`act` is its `do`), or null when `act` is none. */
function readOperatorAction(r: Reader, step: Record<string, unknown>, f: string, act: string, cast: Cast): OperatorAction | null {
  switch (act) {
    case 'unblock':
      return { do: act, device: readDevice(r, step.device, `${f}.device`, cast.deviceCount), action: r.oneOf(step.action, `${f}.action`, ['retry', 'skip'] as const) };
    case 'pause':
    case 'resume':
      return { do: act, device: readDevice(r, step.device, `${f}.device`, cast.deviceCount) };
    case 'handover': {
      if (step.to === undefined) return { do: act };
      const to = r.str(step.to, `${f}.to`);
      if (!cast.agents.has(to)) r.fail(`${f}.to`, `names no agent of this scenario (agents: ${[...cast.agents].join(', ')}); leave it out to let the runtime pick the healthiest idle agent`);
      return { do: act, to };
    }
    default:
      return null;
  }
}

const ACTIONS = 'kill-agent, stop-agent, resume-agent, start-agent, kill-all-agents, kill-runtime, start-runtime, device-fault, restart-broker, restart-database, unblock, pause, resume, handover';

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
      const phase = step.phase === undefined ? undefined : r.oneOf(step.phase, `${f}.phase`, ['switching', 'draining', 'replaying'] as const);
      return phase ? { do: act, runtime: runtime(), phase } : { do: act, runtime: runtime() };
    }
    case 'start-runtime':
      return { do: act, runtime: r.str(step.runtime, `${f}.runtime`) };
    case 'device-fault':
      return { do: act, device: readDevice(r, step.device, `${f}.device`, cast.deviceCount), faults: readFaults(r, step, f) };
    default:
      return readOperatorAction(r, step, f, act, cast) ?? r.fail(`${f}.do`, `"${act}" is not an action (${ACTIONS})`);
  }
}

function labelOf(act: string, a: Action): string {
  const parts = [act];
  if ('agent' in a) parts.push(a.agent);
  if ('runtime' in a) parts.push(a.runtime);
  if ('device' in a) parts.push(a.device);
  if ('action' in a) parts.push(a.action);
  if ('phase' in a && a.phase) parts.push(`in ${a.phase}`);
  if ('to' in a && a.to) parts.push(`to ${a.to}`);
  return parts.join(' ');
}

/** Step `i` of the timeline; `prev` is the step above it (steps given as a share of the load come in order). */
export function readStep(r: Reader, raw: unknown, i: number, cast: Cast, prev: When | undefined): Step {
  const f = `timeline[${i}]`;
  const step = r.obj(raw, f, ['at', 'do', 'agent', 'runtime', 'phase', 'device', 'faults', 'action', 'to']);
  const at = when(r, step.at, `${f}.at`, cast.deviceCount);
  const act = r.str(step.do, `${f}.do`);
  const a = readAction(r, step, f, act, cast);
  // a field this action does not use is a mistake (an `action` on a handover, a `phase` on kill-agent): say so rather than ignore it
  for (const k of Object.keys(step)) if (k !== 'at' && !(k in a)) r.fail(`${f}.${k}`, `is not a field of ${act}`);
  if ('ms' in at && at.ms > 600_000) r.fail(`${f}.at`, 'is past the longest run (600000ms)');
  if (prev && 'percent' in prev && 'percent' in at && at.percent < prev.percent) r.fail(`${f}.at`, `comes before the step above it (${prev.percent}%): list the timeline in order`);
  return { ...a, at, label: labelOf(act, a) } as Step;
}
