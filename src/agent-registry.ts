/**
 * The runtime's view of the agents: one agent actor per known agent, fed by heartbeats and
 * probes, mirrored (throttled) into the `agents` table.
 */
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import type { Logger } from 'pino';
import { agentMachine, type AgentEmitted, type AgentTimings } from '../machines/agent.machine.ts';
import type { Clock, Store } from './ports.ts';
import type { HeartbeatEvent } from './receipts.ts';

export interface AgentView {
  agentId: string;
  topic: string;
  host: string;
  state: 'idle' | 'active' | 'suspect' | 'dead';
  lastHeartbeat: number | null;
}

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
  /** the agent process and its monotonic time of the newest heartbeat heard */
  incarnation: string | null;
  mono: number;
}

export class AgentRegistry {
  private readonly agents = new Map<string, Entry>();

  constructor(
    private readonly o: {
      timings: AgentTimings;
      clock: Clock;
      store: Pick<Store, 'upsertAgent'>;
      logger: Logger;
      inspect?: (e: InspectionEvent) => void;
      /** every event an agent actor emits */
      onEmitted(e: AgentEmitted): void;
      /** an agent was heard for the first time */
      onRegistered(agentId: string): void;
    },
  ) {}

  /** Takes a heartbeat; returns false (and changes nothing) for a replay: one from the same agent
   * process that is not newer than the newest heard. */
  heartbeat(h: HeartbeatEvent): boolean {
    const known = this.agents.has(h.agentId);
    const e = this.ensure(h.agentId, h.topic, h.host);
    if (e.incarnation === h.incarnation && h.mono <= e.mono) return false;
    e.incarnation = h.incarnation;
    e.mono = h.mono;
    e.lastHeartbeat = this.o.clock.now();
    e.actor.send({ type: 'agent.heartbeat', at: h.sentAt });
    if (!known) this.o.onRegistered(h.agentId);
    // throttled by the monotonic clock: a wall-clock jump neither floods nor starves the table
    const mono = this.o.clock.monotonic();
    if (mono - e.lastStored >= 1000) {
      e.lastStored = mono;
      this.o.store
        .upsertAgent({ agentId: h.agentId, topic: h.topic, host: h.host, status: 'up', lastHeartbeat: new Date(e.lastHeartbeat) })
        .catch((err) => this.o.logger.warn({ agentId: h.agentId, err: (err as Error).message }, 'could not record heartbeat'));
    }
    return true;
  }

  /** Whether the agent was ever heard (or is the recorded one). */
  knows(agentId: string): boolean {
    return this.agents.has(agentId);
  }

  /** Makes sure an actor exists for an agent (e.g. the recorded one, before it heartbeats). */
  ensure(agentId: string, topic: string, host = '?'): Entry {
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
      e = { actor, topic, host, lastHeartbeat: null, lastStored: -Infinity, incarnation: null, mono: -Infinity };
      this.agents.set(agentId, e);
    }
    return e;
  }

  send(agentId: string, event: Parameters<Entry['actor']['send']>[0]): void {
    this.agents.get(agentId)?.actor.send(event);
  }

  /** Agents whose heartbeats are current (live.idle or live.active), by id. */
  healthy(): AgentView[] {
    return this.list().filter((a) => a.state === 'idle' || a.state === 'active');
  }

  list(): AgentView[] {
    return [...this.agents.entries()]
      .map(([agentId, e]) => {
        const snap = e.actor.getSnapshot();
        const state: AgentView['state'] = snap.matches({ live: 'active' }) ? 'active' : snap.matches('live') ? 'idle' : snap.matches('suspect') ? 'suspect' : 'dead';
        return { agentId, topic: e.topic, host: e.host, state, lastHeartbeat: e.lastHeartbeat };
      })
      .sort((a, b) => a.agentId.localeCompare(b.agentId));
  }

  stop(): void {
    for (const e of this.agents.values()) e.actor.stop();
  }
}
