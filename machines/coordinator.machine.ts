/**
 * Coordinator statechart: owns the choice of the active agent and the persisted phase.
 *
 * States
 * - loading    reads `agent_service_used` (the assignment) from the store.
 * - electing   no agent is recorded: chooses one of the healthy agents and records it with a
 *              compare-and-set (figure 3 of the patent); another runtime may win the race, in
 *              which case its choice is adopted.
 * - awaiting   no healthy agent is known yet: waits for `agent.healthy`, then elects.
 * - normal     messages flow to the recorded agent. Every `checkAgentLoopTime` it runs the
 *              patent's periodic check (the backstop behind heartbeats and probes).
 *   - normal.idle      between checks.
 *   - normal.checking  the check runs; its verdict is emitted as `coordinator.checked`.
 * - stopped    final.
 *
 * Transitions
 * - loading done with an assignment → normal; done without → electing; error → loading again
 *   after `retryDelay`.
 * - electing done with an assignment → normal; done with none → awaiting; error → electing again
 *   after `retryDelay`.
 * - awaiting `agent.healthy` → electing.
 * - normal.idle after `checkAgentLoopTime` → normal.checking → normal.idle.
 * - any `coordinator.stop` → stopped.
 *
 * Entering normal emits `coordinator.active` with the agent, its queue and the epoch: the
 * dispatcher resumes sending to it.
 */
import { assign, emit, fromPromise, setup } from 'xstate';

/** The row of `agent_service_used`: the agent in use and the fencing epoch. */
export interface Assignment {
  agentId: string;
  topic: string;
  epoch: number;
  lock: 0 | 1;
  phase: string;
}

/** Outcome of the patent's periodic check of the recorded agent. */
export type CheckVerdict =
  | { verdict: 'healthy' }
  | { verdict: 'working'; why: 'switching' | 'has-consumer' }
  | { verdict: 'switch'; why: string };

export type CoordinatorEvent =
  | { type: 'agent.healthy'; agentId: string }
  | { type: 'coordinator.stop' };

export type CoordinatorEmitted =
  | { type: 'coordinator.active'; assignment: Assignment }
  | { type: 'coordinator.awaiting' }
  | { type: 'coordinator.checked'; assignment: Assignment; result: CheckVerdict };

export interface CoordinatorContext {
  assignment: Assignment | null;
  checkAgentLoopTime: number;
  retryDelay: number;
}

export interface CoordinatorInput {
  checkAgentLoopTime: number;
  retryDelay?: number;
}

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as CoordinatorInput,
    emitted: {} as CoordinatorEmitted,
  },
  actors: {
    /** read the recorded assignment, or null */
    loadAssignment: fromPromise<Assignment | null, void>(async () => {
      throw new Error('loadAssignment not provided');
    }),
    /** choose a healthy agent and record it (compare-and-set); null when none is healthy */
    electAgent: fromPromise<Assignment | null, void>(async () => {
      throw new Error('electAgent not provided');
    }),
    /** the patent's periodic check of the recorded agent */
    checkAgent: fromPromise<CheckVerdict, { assignment: Assignment }>(async () => {
      throw new Error('checkAgent not provided');
    }),
  },
  actions: {
    setAssignment: assign({
      assignment: (_, params: { assignment: Assignment | null }) => params.assignment,
    }),
    emitActive: emit(({ context }) => ({ type: 'coordinator.active' as const, assignment: context.assignment! })),
    emitAwaiting: emit({ type: 'coordinator.awaiting' as const }),
    emitChecked: emit(({ context }, params: { result: CheckVerdict }) => ({
      type: 'coordinator.checked' as const,
      assignment: context.assignment!,
      result: params.result,
    })),
  },
  guards: {
    found: (_, params: { assignment: Assignment | null }) => params.assignment !== null,
  },
  delays: {
    checkAgentLoopTime: ({ context }) => context.checkAgentLoopTime,
    retryDelay: ({ context }) => context.retryDelay,
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => ({
    assignment: null,
    checkAgentLoopTime: input.checkAgentLoopTime,
    retryDelay: input.retryDelay ?? 1000,
  }),
  initial: 'loading',
  on: { 'coordinator.stop': '.stopped' },
  states: {
    loading: {
      invoke: {
        src: 'loadAssignment',
        onDone: [
          {
            guard: { type: 'found', params: ({ event }) => ({ assignment: event.output }) },
            target: 'normal',
            actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
          },
          { target: 'electing' },
        ],
        onError: 'loadBackoff',
      },
    },
    loadBackoff: { after: { retryDelay: 'loading' } },
    electing: {
      invoke: {
        src: 'electAgent',
        onDone: [
          {
            guard: { type: 'found', params: ({ event }) => ({ assignment: event.output }) },
            target: 'normal',
            actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
          },
          { target: 'awaiting' },
        ],
        onError: 'electBackoff',
      },
    },
    electBackoff: { after: { retryDelay: 'electing' } },
    awaiting: {
      entry: 'emitAwaiting',
      on: { 'agent.healthy': 'electing' },
    },
    normal: {
      entry: 'emitActive',
      initial: 'idle',
      states: {
        idle: { after: { checkAgentLoopTime: 'checking' } },
        checking: {
          invoke: {
            src: 'checkAgent',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onDone: {
              target: 'idle',
              actions: { type: 'emitChecked', params: ({ event }) => ({ result: event.output }) },
            },
            onError: 'idle',
          },
        },
      },
    },
    stopped: { type: 'final' },
  },
});

export type CoordinatorMachine = typeof coordinatorMachine;
