/**
 * The runtime's view of the agents: one agent actor per known agent, fed by heartbeats and
 * probes, mirrored (throttled) into the `agents` table. Only authenticated heartbeats reach it
 * (the runtime checks their seal first). An agent's queue is derived from its id, never taken
 * from a message. Bounded: at most `maxAgents`; an agent dead and unheard for `forgetAfter` is
 * forgotten (never the one in use or being switched from), and the longest-silent dead one makes
 * room for a newcomer when the registry is full.
 */
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import { agentMachine, type AgentEmitted, type AgentTimings } from '../../machines/agent.machine.ts';
import type { AgentStore, Clock } from '../ports.ts';
import type { HeartbeatEvent, LaneReport } from '../side-channel.ts';
import type { AgentView } from '../api.ts';

export type { AgentView };

/** xstate's clock, driven by the Clock port (so tests can simulate time). */
export const xstateClock = (clock: Clock) => ({
  setTimeout: (fn: (...args: unknown[]) => void, ms: number) => clock.setTimeout(fn, ms),
  clearTimeout: (handle: unknown) => (handle as { cancel(): void } | undefined)?.cancel(),
});

interface Entry {
  actor: Actor<typeof agentMachine>;
  topic: string;
  host: string;
  lastHeartbeat: number | null;
  lastStored: number;
  /** this runtime's monotonic time when it last heard the agent (or first knew of it) */
  seenAt: number;
  /** the newest beat heard per agent process, for the last few processes (older ones forgotten) */
  beats: Map<string, number>;
  /** the lines that did not flow, as its newest heartbeat told (at most MAX_LANE_REPORTS) */
  lanes: readonly LaneReport[];
}

/** agent processes per agent whose last beat is kept: a replayed heartbeat of one of them is refused */
const INCARNATIONS_KEPT = 8;

/** What became of a heartbeat. */
export type HeartbeatVerdict = 'taken' | 'replay' | 'full';

export class AgentRegistry {
  private readonly agents = new Map<string, Entry>();

  constructor(
    private readonly o: {
      timings: AgentTimings;
      clock: Clock;
      store: Pick<AgentStore, 'upsertAgent'>;
      logger: Logger;
      inspect?: (e: InspectionEvent) => void;
      /** every event an agent actor emits */
      onEmitted(e: AgentEmitted): void;
      /** an agent was heard for the first time */
      onRegistered(agentId: string): void;
      /** the queue of an agent, from its id */
      queueOf(agentId: string): string;
      maxAgents: number;
      /** ms a dead agent stays known without a heartbeat */
      forgetAfter: number;
      /** agents never forgotten: the one in use, the one being switched from */
      pinned(): ReadonlyArray<string | null>;
      /** an agent was forgotten */
      onForgotten?(agentId: string): void;
    },
  ) {}

  /**
   * Takes an authenticated heartbeat. `replay` (nothing changes): its beat is not above the newest
   * heard from that agent process. `full`: a new agent, and no room even after forgetting the
   * longest-silent dead one. Liveness runs on this runtime's clock: when the heartbeat arrived.
   */
  heartbeat(h: HeartbeatEvent): HeartbeatVerdict {
    const known = this.agents.has(h.agentId);
    if (!known && this.agents.size >= this.o.maxAgents && !this.makeRoom()) return 'full';
    const e = this.ensure(h.agentId, h.host);
    const last = e.beats.get(h.incarnation);
    if (last !== undefined && h.beat <= last) return 'replay';
    e.beats.delete(h.incarnation);
    e.beats.set(h.incarnation, h.beat);
    if (e.beats.size > INCARNATIONS_KEPT) e.beats.delete(e.beats.keys().next().value!);
    e.host = h.host;
    e.lanes = h.lanes ?? [];
    e.lastHeartbeat = this.o.clock.now();
    e.seenAt = this.o.clock.monotonic();
    e.actor.send({ type: 'agent.heartbeat' });
    if (!known) this.o.onRegistered(h.agentId);
    // throttled by the monotonic clock: a wall-clock jump neither floods nor starves the table
    const mono = this.o.clock.monotonic();
    if (mono - e.lastStored >= 1000) {
      e.lastStored = mono;
      this.o.store
        .upsertAgent({ agentId: h.agentId, topic: e.topic, host: h.host, status: 'up', lastHeartbeat: new Date(e.lastHeartbeat) })
        .catch((err) => this.o.logger.warn({ agentId: h.agentId, err: (err as Error).message }, 'could not record heartbeat'));
    }
    return 'taken';
  }

  /** Forgets every agent dead and unheard for `forgetAfter` (not a pinned one); returns how many. */
  forgetDead(): number {
    const now = this.o.clock.monotonic();
    let n = 0;
    for (const [agentId, e] of this.agents) {
      if (now - e.seenAt >= this.o.forgetAfter && this.forgettable(agentId, e)) {
        this.forget(agentId, e);
        n++;
      }
    }
    return n;
  }

  /** The registry is full: forgets the dead agent unheard for longest, if any. */
  private makeRoom(): boolean {
    let oldest: [string, Entry] | null = null;
    for (const [agentId, e] of this.agents) if (this.forgettable(agentId, e) && (!oldest || e.seenAt < oldest[1].seenAt)) oldest = [agentId, e];
    if (!oldest) return false;
    this.forget(...oldest);
    return true;
  }

  private forgettable(agentId: string, e: Entry): boolean {
    return !this.o.pinned().includes(agentId) && stateOf(e) === 'dead';
  }

  private forget(agentId: string, e: Entry): void {
    e.actor.stop();
    this.agents.delete(agentId);
    this.o.onForgotten?.(agentId);
    this.o.logger.info({ agentId }, 'forgot an agent dead and unheard for long');
  }

  /** Whether the agent was ever heard (or is the recorded one). */
  knows(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  /** Makes sure an actor exists for an agent (e.g. the recorded one, before it heartbeats). */
  ensure(agentId: string, host = '?'): Entry {
    let e = this.agents.get(agentId);
    if (!e) {
      const actor = createActor(agentMachine, {
        input: { agentId, ...this.o.timings },
        clock: xstateClock(this.o.clock),
        systemId: `agent:${agentId}`,
        ...(this.o.inspect ? { inspect: this.o.inspect } : {}),
      });
      for (const type of ['agent.suspect', 'agent.dead', 'agent.alive'] as const) {
        actor.on(type, (ev) => this.o.onEmitted(ev as AgentEmitted));
      }
      actor.start();
      e = { actor, topic: this.o.queueOf(agentId), host, lastHeartbeat: null, lastStored: -Infinity, seenAt: this.o.clock.monotonic(), beats: new Map(), lanes: [] };
      this.agents.set(agentId, e);
    }
    return e;
  }

  send(agentId: string, event: Parameters<Entry['actor']['send']>[0]): void {
    this.agents.get(agentId)?.actor.send(event);
  }

  /** The agent process heard last (its newest heartbeat's incarnation), or null when never heard. */
  incarnation(agentId: string): string | null {
    return [...(this.agents.get(agentId)?.beats.keys() ?? [])].at(-1) ?? null;
  }

  /** The lines of an agent that did not flow at its newest heartbeat (none: all flowed, or never heard). */
  lanes(agentId: string): readonly LaneReport[] {
    return this.agents.get(agentId)?.lanes ?? [];
  }

  /** Agents whose heartbeats are current (live.idle or live.active), by id. */
  healthy(): AgentView[] {
    return this.list().filter((a) => a.state === 'idle' || a.state === 'active');
  }

  list(): AgentView[] {
    return [...this.agents.entries()]
      .map(([agentId, e]) => ({ agentId, topic: e.topic, host: e.host, state: stateOf(e), lastHeartbeat: e.lastHeartbeat }))
      .sort((a, b) => a.agentId.localeCompare(b.agentId));
  }

  stop(): void {
    for (const e of this.agents.values()) e.actor.stop();
  }
}

function stateOf(e: Entry): AgentView['state'] {
  const snap = e.actor.getSnapshot();
  return snap.matches({ live: 'active' }) ? 'active' : snap.matches('live') ? 'idle' : snap.matches('suspect') ? 'suspect' : 'dead';
}
