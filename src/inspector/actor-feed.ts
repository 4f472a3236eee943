/**
 * What the inspector shows of the running statecharts, read from xstate's `inspect` events: the latest
 * state of each actor it knows (the coordinator, the dispatcher, one per agent), kept for newcomers
 * and broadcast when it changes, and the events the actors receive (the too frequent ones left out).
 */
import type { InspectionEvent } from 'xstate';

/** Events too frequent to stream one by one (they still move the charts). */
const QUIET = new Set(['dispatch.message', 'agent.heartbeat', 'agent.probe']);

export interface ActorSnapshot {
  actor: string;
  machine: string;
  value: unknown;
}

export interface ActorFeed {
  /** pass to xstate's `inspect` option */
  inspect(e: InspectionEvent): void;
  /** the latest state of every actor seen */
  latest(): Iterable<ActorSnapshot>;
}

/** The actor and machine a system id names; null for actors the inspector does not chart. */
function nameOf(ref: unknown): { actor: string; machine: string } | null {
  const id = (ref as { systemId?: string } | undefined)?.systemId;
  if (!id) return null;
  if (id === 'coordinator' || id === 'dispatcher') return { actor: id, machine: id };
  if (id.startsWith('agent:')) return { actor: id, machine: 'agent' };
  return null;
}

/** An event's fields but its type, as JSON, cut at 2000 characters. */
function safePayload(event: Record<string, unknown>): unknown {
  const { type: _t, ...rest } = event;
  if (Object.keys(rest).length === 0) return undefined;
  try {
    const text = JSON.stringify(rest);
    return text.length > 2000 ? { truncated: text.slice(0, 2000) } : JSON.parse(text);
  } catch {
    return { unserialisable: true };
  }
}

/** Feeds `broadcast` with `snapshot` (a state changed) and `event` (an actor received one). */
export function createActorFeed(broadcast: (kind: 'snapshot' | 'event', data: unknown) => void): ActorFeed {
  const latest = new Map<string, ActorSnapshot>();
  return {
    inspect(e) {
      if (e.type === '@xstate.snapshot') {
        const who = nameOf(e.actorRef);
        const value = (e.snapshot as { value?: unknown }).value;
        if (!who || value === undefined) return;
        const prev = latest.get(who.actor);
        if (prev && JSON.stringify(prev.value) === JSON.stringify(value)) return;
        const s = { ...who, value };
        latest.set(who.actor, s);
        broadcast('snapshot', s);
      } else if (e.type === '@xstate.event') {
        const who = nameOf(e.actorRef);
        const type = (e.event as { type: string }).type;
        if (!who || QUIET.has(type) || type === 'xstate.init') return;
        broadcast('event', { at: Date.now(), actor: who.actor, type, payload: safePayload(e.event as Record<string, unknown>) });
      }
    },
    latest: () => latest.values(),
  };
}
