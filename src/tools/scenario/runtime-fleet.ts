/**
 * The runtimes of a scenario, each a child process (`baton _runtime`) driven over IPC: starting them,
 * what they report (who leads, which agent is active, which agents each has heard), dispatching
 * through whichever leads, as a host does, and having the leader carry out operator actions. Every
 * event a runtime forwards is re-emitted on `events` (`event`, then `change`); `change` also comes
 * when a runtime process ends, so waits re-check.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { RuntimeEvents } from '../../api.ts';
import type { ConfigMessage } from '../../wire.ts';
import { batonBin } from '../processes.ts';
import type { FromRuntime, ToRuntime } from './runtime-process.ts';
import type { OperatorAction } from './schema.ts';
import type { RunPlace } from './setup.ts';
import { pause, until } from './wait.ts';

/** A runtime's answer to one request (a dispatch or an action), matched by its id. */
type Reply = Extract<FromRuntime, { type: 'result' | 'action-result' }>;
export type ActionAnswer = { ok: true; outcome: 'done' | 'already'; detail: string } | { ok: false; code: string; message: string };

export interface RuntimeNews {
  runtimeId: string;
  name: keyof RuntimeEvents;
  payload: Record<string, unknown>;
}

export interface RuntimeChild {
  id: string;
  proc: ChildProcess;
  leading: boolean;
  alive: boolean;
  /** the agents this runtime has heard (registered) */
  heard: Set<string>;
  pending: Map<number, (r: Reply) => void>;
}

/** A message refused this many times (or with no leader for NO_LEADER_MS) is given up: not accepted. */
const MAX_REFUSALS = 600;
const NO_LEADER_MS = 30_000;
/** a host's pause before sending a refused message again */
const RETRY_PAUSE_MS = 50;
/** an action refused because the runtime stopped leading or ended is asked of the next leader, this many times at most */
const ACTION_TRIES = 20;
/** codes that say "not this runtime", not "not this action": the next leader is asked (actions are idempotent) */
const ASK_NEXT_LEADER = ['not-leader', 'runtime-gone', 'runtime-stopped'];

/** `baton _runtime`, with an IPC channel; its stderr is drained, not kept. */
const spawnRuntime = (env: Record<string, string | undefined>): ChildProcess =>
  spawn(process.execPath, [batonBin, '_runtime'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });

export class RuntimeFleet {
  readonly events = new EventEmitter();
  private readonly children = new Map<string, RuntimeChild>();
  private nextId = 1;
  /** the agent the leader last made active */
  activeAgent: string | null = null;

  constructor(
    private readonly o: {
      place: RunPlace;
      devices: Array<{ id: string; fencesByEpoch: boolean }>;
      /** the runtime that serves the inspector, on this port */
      inspect?: { runtimeId: string; port: number; onUrl?: (url: string) => void };
      /** starts a runtime process with these variables added to the environment (tests give a fake) */
      spawn?: (env: Record<string, string | undefined>) => ChildProcess;
    },
  ) {
    // one waiter per device may wait for a leader at once (64 devices at most)
    this.events.setMaxListeners(0);
  }

  get(id: string): RuntimeChild | undefined {
    return this.children.get(id);
  }

  all(): RuntimeChild[] {
    return [...this.children.values()];
  }

  leader(): RuntimeChild | undefined {
    return this.all().find((r) => r.alive && r.leading);
  }

  /** Starts runtime `id`; resolves once it has started, rejects if it exits before. */
  start(id: string): Promise<void> {
    const { place, devices, inspect } = this.o;
    const proc = (this.o.spawn ?? spawnRuntime)({
      BATON_AMQP_URL: place.amqpUrl,
      BATON_DATABASE_URL: place.databaseUrl,
      BATON_NAMESPACE: place.namespace,
      BATON_SECRET: place.secret,
      BATON_SCENARIO_RUNTIME: JSON.stringify({
        devices: devices.map((d) => ({ id: d.id, fencesByEpoch: d.fencesByEpoch })),
        runtimeId: id,
        leaderTtl: 3000,
        managementUrl: place.managementUrl,
        ...(inspect && id === inspect.runtimeId ? { inspectPort: inspect.port } : {}),
      }),
    });
    proc.stderr!.resume();
    const r: RuntimeChild = { id, proc, leading: false, alive: true, heard: new Set(), pending: new Map() };
    this.children.set(id, r);
    const gone = () => {
      r.alive = false;
      r.leading = false;
      for (const p of r.pending.values()) p({ type: 'result', id: -1, ok: false, code: 'runtime-gone', message: 'the runtime process ended' });
      r.pending.clear();
      this.events.emit('change');
    };
    proc.on('error', gone);
    proc.on('disconnect', gone);
    return new Promise<void>((resolve, reject) => {
      proc.on('exit', (code, sig) => {
        gone();
        reject(new Error(`runtime ${id} exited (${sig ?? code}) before it started`));
      });
      proc.on('message', (m: FromRuntime) => {
        if (m.type === 'started') {
          if (m.inspectorUrl) inspect?.onUrl?.(m.inspectorUrl);
          resolve();
        } else if (m.type === 'result' || m.type === 'action-result') {
          r.pending.get(m.id)?.(m);
          r.pending.delete(m.id);
        } else if (m.type === 'event') this.heardFrom(r, m.name, m.payload as Record<string, unknown>);
      });
    });
  }

  /** Keeps what the waits need, then tells the listeners. */
  private heardFrom(r: RuntimeChild, name: keyof RuntimeEvents, payload: Record<string, unknown>): void {
    if (name === 'leader.won') r.leading = true;
    else if (name === 'leader.lost') r.leading = false;
    else if (name === 'agent.registered') r.heard.add(payload.agentId as string);
    else if (name === 'coordinator.active') this.activeAgent = (payload.assignment as { agentId: string }).agentId;
    this.events.emit('event', { runtimeId: r.id, name, payload } satisfies RuntimeNews);
    this.events.emit('change');
  }

  /** Resolves once runtime `id` leads (it reported `leader.won`). */
  untilLeads(id: string, ms: number): Promise<boolean> {
    return until(this.events, 'change', () => this.get(id)?.leading === true, ms, `runtime ${id} reported no leader.won (the first runtime leads before the others start)`);
  }

  /** Resolves once some runtime has made an agent active (`coordinator.active`). */
  untilActive(ms: number, signal?: AbortSignal): Promise<boolean> {
    return until(this.events, 'change', () => this.activeAgent !== null, ms, 'no agent became active', signal);
  }

  /** Resolves once every running runtime has heard (`agent.registered`) every agent named. */
  untilHeard(agentIds: string[], ms: number, signal?: AbortSignal): Promise<boolean> {
    const missing = () => this.all().filter((r) => r.alive).flatMap((r) => agentIds.filter((a) => !r.heard.has(a)).map((a) => `${a} at ${r.id}`));
    return until(this.events, 'change', () => missing().length === 0, ms, () => `no agent.registered for ${missing().join(', ')}`, signal);
  }

  /** Resolves with the runtime that leads, waiting up to NO_LEADER_MS for one; undefined when none led by then (or the run aborted). */
  private async leading(signal?: AbortSignal): Promise<RuntimeChild | undefined> {
    // a runtime died or an election is under way: wait for the next `leader.won`
    if (!this.leader()) await until(this.events, 'change', () => this.leader() !== undefined, NO_LEADER_MS, 'no runtime led', signal).catch(() => false);
    return this.leader();
  }

  /**
   * Dispatches through whichever runtime leads; resolves with the seq it was given, or null when it
   * was given up (refused MAX_REFUSALS times, no leader for NO_LEADER_MS, or the run aborted).
   */
  async dispatch(message: ConfigMessage, signal?: AbortSignal): Promise<{ deviceId: string; seq: number } | null> {
    for (let refusals = 0; refusals < MAX_REFUSALS && !signal?.aborted; ) {
      const r = await this.leading(signal);
      if (!r) return null;
      const res = await this.request(r, (id) => ({ type: 'dispatch', id, message }));
      if (res.ok && res.type === 'result') return { deviceId: res.deviceId, seq: res.seq };
      refusals++;
      // refused or lost in flight, so not accepted: sent again after a host's retry pause (the
      // refusal may come before the event saying why, e.g. `leader.lost`, so no event to await)
      await pause(RETRY_PAUSE_MS);
    }
    return null;
  }

  /**
   * Has the leading runtime carry out an operator action; resolves with its answer. A refusal that
   * says the runtime no longer leads (or ended) is asked of the next leader; any other refusal is
   * the answer. With no leader for NO_LEADER_MS it answers `no-leader`.
   */
  async act(action: OperatorAction, signal?: AbortSignal): Promise<ActionAnswer> {
    let last: ActionAnswer = { ok: false, code: 'no-leader', message: `no runtime led for ${NO_LEADER_MS / 1000} s` };
    for (let tries = 0; tries < ACTION_TRIES && !signal?.aborted; tries++) {
      const r = await this.leading(signal);
      if (!r) return last;
      const res = await this.request(r, (id) => ({ type: 'action', id, action }));
      if (res.ok) return res.type === 'action-result' ? { ok: true, outcome: res.outcome, detail: res.detail } : { ok: false, code: 'error', message: `runtime ${r.id} answered the action as a dispatch` };
      last = { ok: false, code: res.code, message: res.message };
      if (!ASK_NEXT_LEADER.includes(res.code)) return last;
      await pause(RETRY_PAUSE_MS); // as for a dispatch: the refusal may come before the event saying who leads now
    }
    return last;
  }

  /** Sends runtime `r` the request `build(id)`; resolves with its reply, or a `runtime-gone` refusal when the process ends or the send fails. */
  private request(r: RuntimeChild, build: (id: number) => ToRuntime): Promise<Reply> {
    const id = this.nextId++;
    return new Promise<Reply>((resolve) => {
      const failed = () => resolve({ type: 'result', id, ok: false, code: 'runtime-gone', message: 'the runtime process ended' });
      r.pending.set(id, resolve);
      try {
        r.proc.send(build(id), (err) => err && (r.pending.delete(id), failed()));
      } catch {
        r.pending.delete(id);
        failed();
      }
    });
  }

  /** Kills runtime `r` now (SIGKILL), or when its switch reaches `phase`. */
  kill(r: RuntimeChild, phase?: string): void {
    if (phase) r.proc.send({ type: 'crash-at', phase } satisfies ToRuntime, () => {});
    else r.proc.kill('SIGKILL');
  }

  killAll(): void {
    for (const r of this.all()) if (r.alive) r.proc.kill('SIGKILL');
  }
}
