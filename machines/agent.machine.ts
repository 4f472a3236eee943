/**
 * Agent liveness statechart: one actor per known agent, fed by heartbeats, the clock and
 * consumer probes of the agent's queue.
 *
 * States
 * - live.idle    heartbeating, registered, not the active agent.
 * - live.active  heartbeating and recorded in `agent_service_used` as the active agent.
 * - suspect.silent      heartbeats stopped for `heartbeatTimeout`; its queue may still have a
 *                       consumer (a hung process keeps its TCP connection open).
 * - suspect.unconsumed  a probe saw no consumer on its queue (a killed process loses its
 *                       connection at once, long before heartbeats are overdue).
 * - dead         final for this incarnation: only a new heartbeat revives it, as `live.idle`.
 *
 * Transitions
 * - live: `agent.heartbeat` re-enters `live` (restarting the heartbeat timer) and returns to
 *   the same child through history; after `heartbeatTimeout` without one → suspect.silent;
 *   `agent.probe` with zero consumers → suspect.unconsumed.
 * - live.idle `agent.activate` → live.active; live.active `agent.deactivate` → live.idle.
 * - suspect: `agent.heartbeat` → back to the live child it left (history), unless it is
 *   unconsumed: a process that heartbeats but has no consumer is still of no use; after
 *   `hungTimeout` in suspect → dead (reason `hung`).
 * - suspect.silent `agent.probe` with zero consumers → dead (reason `killed`).
 * - suspect.unconsumed `agent.probe` with consumers → live (history); after `consumerGrace`
 *   → dead (reason `no-consumer`).
 * - dead `agent.heartbeat` → live.idle (the process came back; the coordinator decides whether
 *   it is used again).
 *
 * Emitted: `agent.suspect`, `agent.dead`, `agent.alive` with the agent id, so the runtime and
 * the coordinator can react without polling snapshots.
 */
import { assign, emit, setup } from 'xstate';

export type AgentDeathReason = 'killed' | 'hung' | 'no-consumer';

export type AgentEvent =
  | { type: 'agent.heartbeat'; at?: number }
  | { type: 'agent.probe'; consumers: number }
  | { type: 'agent.activate' }
  | { type: 'agent.deactivate' };

export type AgentEmitted =
  | { type: 'agent.suspect'; agentId: string; why: 'silent' | 'unconsumed' }
  | { type: 'agent.dead'; agentId: string; reason: AgentDeathReason }
  | { type: 'agent.alive'; agentId: string };

export interface AgentTimings {
  /** ms without a heartbeat before the agent is suspect */
  heartbeatTimeout: number;
  /** ms in suspect before a consumer that does nothing is declared hung */
  hungTimeout: number;
  /** ms a suspect agent may stay without a consumer before it is declared dead */
  consumerGrace: number;
}

export interface AgentContext extends AgentTimings {
  agentId: string;
  deathReason: AgentDeathReason | null;
}

export interface AgentInput extends AgentTimings {
  agentId: string;
}

const noConsumer = ({ event }: { event: AgentEvent }) =>
  event.type === 'agent.probe' && event.consumers === 0;
const hasConsumer = ({ event }: { event: AgentEvent }) =>
  event.type === 'agent.probe' && event.consumers > 0;

export const agentMachine = setup({
  types: {
    context: {} as AgentContext,
    events: {} as AgentEvent,
    input: {} as AgentInput,
    emitted: {} as AgentEmitted,
  },
  guards: { noConsumer, hasConsumer },
  delays: {
    heartbeatTimeout: ({ context }) => context.heartbeatTimeout,
    hungTimeout: ({ context }) => context.hungTimeout,
    consumerGrace: ({ context }) => context.consumerGrace,
  },
  actions: {
    emitSilent: emit(({ context }) => ({ type: 'agent.suspect' as const, agentId: context.agentId, why: 'silent' as const })),
    emitUnconsumed: emit(({ context }) => ({ type: 'agent.suspect' as const, agentId: context.agentId, why: 'unconsumed' as const })),
    emitAlive: emit(({ context }) => ({ type: 'agent.alive' as const, agentId: context.agentId })),
    markDead: assign({
      deathReason: (_, params: { reason: AgentDeathReason }) => params.reason,
    }),
    emitDead: emit(({ context }) => ({
      type: 'agent.dead' as const,
      agentId: context.agentId,
      reason: context.deathReason ?? 'killed',
    })),
    clearDeath: assign({ deathReason: null }),
  },
}).createMachine({
  id: 'agent',
  context: ({ input }) => ({ ...input, deathReason: null }),
  initial: 'live',
  states: {
    live: {
      initial: 'idle',
      after: { heartbeatTimeout: { target: 'suspect.silent', actions: 'emitSilent' } },
      on: {
        'agent.heartbeat': { target: '.hist', reenter: true },
        'agent.probe': { guard: 'noConsumer', target: 'suspect.unconsumed', actions: 'emitUnconsumed' },
      },
      states: {
        idle: { on: { 'agent.activate': 'active' } },
        active: { on: { 'agent.deactivate': 'idle' } },
        hist: { type: 'history' },
      },
    },
    suspect: {
      initial: 'silent',
      after: {
        hungTimeout: { target: 'dead', actions: [{ type: 'markDead', params: { reason: 'hung' } }] },
      },
      states: {
        silent: {
          on: {
            'agent.heartbeat': { target: '#agent.live.hist', actions: 'emitAlive' },
            'agent.probe': {
              guard: 'noConsumer',
              target: '#agent.dead',
              actions: [{ type: 'markDead', params: { reason: 'killed' } }],
            },
          },
        },
        unconsumed: {
          after: {
            consumerGrace: {
              target: '#agent.dead',
              actions: [{ type: 'markDead', params: { reason: 'no-consumer' } }],
            },
          },
          on: { 'agent.probe': { guard: 'hasConsumer', target: '#agent.live.hist', actions: 'emitAlive' } },
        },
      },
    },
    dead: {
      entry: 'emitDead',
      on: { 'agent.heartbeat': { target: 'live.idle', actions: ['clearDeath', 'emitAlive'] } },
    },
  },
});

export type AgentMachine = typeof agentMachine;
