/**
 * Coordinator statechart: owns the choice of the active agent, the switch from a failed agent to
 * a healthy one (DESIGN.md §5), and the persisted phase.
 *
 * States
 * - following   another runtime leads (or none yet): do nothing but wait for `leader.won`.
 * - loading     read `agent_service_used`; resume whatever phase it records.
 * - electing    no agent recorded: choose a healthy one, record it (compare-and-set; a rival
 *               runtime's choice is adopted). `awaiting`: none is healthy yet.
 * - adopting    (transient) the recorded or elected agent is used, unless the runtime already
 *               holds it dead (`agentDead`, provided from the agent registry): a death that came
 *               while this runtime followed, loaded or elected was not acted on then.
 * - normal      messages flow to the active agent. `normal.idle` → after `checkAgentLoopTime`
 *               → `normal.checking` runs the patent's periodic check → back to idle.
 * - switching   the handover has begun:
 *   - begin      one compare-and-set raises the epoch, sets lock = 1, phase = switching, and
 *                records the switch; zero rows updated = another runtime won → loading.
 *   - quiescing  the dispatcher confirms its in-flight publishes and parks from then on.
 *   - catchingUp (a planned handover only) the old agent keeps its lease and writes what it was
 *                sent while new messages park, until the ledger has every seq sent to it settled
 *                on the lines that flow (`awaitCaughtUp`), or for `catchUpTimeout` at most: what it
 *                still holds then is given back and moved as before. Its queue is then (nearly)
 *                empty, so the stream pauses for the release and the replay, not for a move.
 *   - releasing  (a planned handover only) the old agent is asked to give its lease back
 *                (`askRelease`, repeated until answered): it finishes the requests on the wire,
 *                returns its deliveries to its queue and answers `agent.released`. Its lease is then
 *                known returned: the new agent needs no wait for it to expire, and nothing is fenced.
 *                No answer within `releaseTimeout` (or the old agent dead): fencing, as for a failure.
 *   - fencing    the old agent's broker connection is closed (where the management API is
 *                configured); its lease is no longer renewed either way.
 *   - choosing   a healthy agent other than the old one is recorded as the new active agent;
 *                when there is none, the old one once it is healthy again (its queue stays put).
 *   - awaitingCandidate  none is healthy: keep parking until `agent.healthy`.
 * - draining    once the old queue has no consumer, its messages are moved to the new queue, in
 *               order, until a check after the move finds it with no consumer and no message.
 * - replaying   the dispatcher sends the parked rows to the new agent, oldest first, then sends
 *               directly; `dispatcher.replayed` → `completing` persists phase normal, lock 0.
 * - stopped     final.
 * Every step that fails goes to a `…Backoff` sibling and retries after `retryDelay`.
 *
 * Deaths in every phase: `agent.dead` is acted on as an event only in `normal`; elsewhere the agent
 * actor keeps it (dead stays dead until the agent heartbeats again), and every way into normal asks
 * `agentDead` first: adopting (after loading or electing) and completing (a new agent that died or
 * hung during its own switch). Each then starts a new switch at once, from the persisted state.
 *
 * Planned handover (`coordinator.handover`, an operator's or a leaving agent's): taken in `normal`
 * only (elsewhere the runtime answers before sending it). It is the same switch with reason
 * `planned handover (by …)`, its fence step replaced by `releasing`, and `to` preferred by
 * `chooseCandidate`. It belongs to the leader term that began it: `loading` forgets it, so a
 * resumed switch fences as after a failure.
 *
 * Transitions
 * - following `leader.won` → loading; every state but stopped: `leader.lost` → following.
 * - loading done: none → electing; phase normal → adopting; switching → switching.quiescing
 *   (or .resumeChosen once the candidate is recorded); draining → draining; replaying → replaying.
 * - electing done found → adopting; none → awaiting (`agent.healthy` → electing).
 * - adopting: agent dead → switching.begin; else → normal (emits active).
 * - normal `agent.dead` of the active agent, or a check verdict `switch` → switching.begin;
 *   `coordinator.handover` → switching.begin (planned).
 * - switching.begin done started → quiescing; lost → loading.
 * - switching.quiescing `dispatcher.quiesced` → catchingUp (planned) or fencing → choosing.
 * - switching.catchingUp done, or after `catchUpTimeout` → releasing; `agent.dead` of the old
 *   agent → fencing (emits `handover.fallback`).
 * - switching.releasing `agent.released` by the old agent for its epoch → choosing (emits
 *   `handover.released`); after `releaseTimeout`, `agent.dead` of the old agent, or the request
 *   failing → fencing (emits `handover.fallback`).
 * - switching.choosing done found → draining; none → awaitingCandidate (`agent.healthy` → choosing).
 * - draining done → replaying; replaying `dispatcher.replayed` → completing → normal, or
 *   → switching.begin when the new agent is already dead.
 * - any `coordinator.stop` → stopped.
 *
 * Emitted: `coordinator.active` (dispatcher: send to this agent), `coordinator.quiesce`
 * (dispatcher: settle and park), `coordinator.awaiting`, `coordinator.checked`,
 * `switch.started`, `switch.phase`, `switch.completed`, `handover.released` (the old agent's lease
 * is returned: no wait for its expiry), `handover.fallback` (it was not: fenced as for a failure).
 */
import { assign, emit, fromCallback, fromPromise, setup, type EventObject } from 'xstate';

export type Phase = 'normal' | 'switching' | 'draining' | 'replaying';

/** The row of `agent_service_used`: the agent in use, the fencing epoch and the switch phase. */
export interface Assignment {
  agentId: string;
  topic: string;
  epoch: number;
  lock: 0 | 1;
  phase: Phase;
  switchId: string | null;
  /** the agent being switched away from (during a switch) */
  previousAgent: string | null;
}

/** Outcome of the patent's periodic check of the recorded agent. */
export type CheckVerdict =
  | { verdict: 'healthy' }
  | { verdict: 'working'; why: 'switching' | 'has-consumer' }
  | { verdict: 'switch'; why: string };

export type BeginResult = { kind: 'started'; assignment: Assignment } | { kind: 'lost' };

export type CoordinatorEvent =
  | { type: 'leader.won' }
  | { type: 'leader.lost' }
  | { type: 'agent.healthy'; agentId: string }
  | { type: 'agent.dead'; agentId: string; reason: string }
  | { type: 'dispatcher.quiesced' }
  | { type: 'dispatcher.replayed'; replayed: number }
  /** a planned handover: to `to` (null: the usual choice), asked by `by` */
  | { type: 'coordinator.handover'; to: string | null; by: string }
  /** the agent process `incarnation` gave back the lease of `epoch` (its `released` receipt) */
  | { type: 'agent.released'; agentId: string; epoch: number; incarnation: string }
  | { type: 'coordinator.stop' };

export type CoordinatorEmitted =
  | { type: 'coordinator.active'; assignment: Assignment }
  | { type: 'coordinator.quiesce' }
  | { type: 'coordinator.awaiting' }
  | { type: 'coordinator.checked'; assignment: Assignment; result: CheckVerdict }
  | { type: 'switch.started'; assignment: Assignment; reason: string }
  | { type: 'switch.phase'; assignment: Assignment; phase: Phase | 'awaiting-candidate' }
  | { type: 'switch.completed'; assignment: Assignment }
  | { type: 'handover.released'; assignment: Assignment; agentId: string; incarnation: string }
  | { type: 'handover.fallback'; assignment: Assignment; agentId: string; why: string };

/** A planned handover under way: the agent preferred (null: the usual choice) and who asked. */
export interface Handover {
  to: string | null;
  by: string;
}

export interface CoordinatorContext {
  assignment: Assignment | null;
  reason: string;
  replayed: number;
  checkAgentLoopTime: number;
  retryDelay: number;
  /** the planned handover of the switch under way (null: none, or a switch for a failure) */
  handover: Handover | null;
  /** ms the old agent has to answer a release request before it is fenced */
  releaseTimeout: number;
  /** ms the old agent may take to write what it was sent before it is asked for its lease back */
  catchUpTimeout: number;
}

export interface CoordinatorInput {
  checkAgentLoopTime: number;
  retryDelay?: number;
  /** default 3000 (two lease durations) */
  releaseTimeout?: number;
  /** default 1500 (a lease duration) */
  catchUpTimeout?: number;
}

type WithAssignment = { assignment: Assignment };

const notProvided = (name: string) => async (): Promise<never> => {
  throw new Error(`${name} not provided`);
};

export const coordinatorMachine = setup({
  types: {
    context: {} as CoordinatorContext,
    events: {} as CoordinatorEvent,
    input: {} as CoordinatorInput,
    emitted: {} as CoordinatorEmitted,
  },
  actors: {
    /** read the recorded assignment, or null */
    loadAssignment: fromPromise<Assignment | null, void>(notProvided('loadAssignment')),
    /** choose a healthy agent and record it (compare-and-set); null when none is healthy */
    electAgent: fromPromise<Assignment | null, void>(notProvided('electAgent')),
    /** the patent's periodic check of the recorded agent */
    checkAgent: fromPromise<CheckVerdict, WithAssignment>(notProvided('checkAgent')),
    /** compare-and-set: raise the epoch, lock = 1, phase = switching, record the switch */
    beginSwitch: fromPromise<BeginResult, WithAssignment & { reason: string; planned: boolean }>(notProvided('beginSwitch')),
    /** a planned handover: resolves once every seq sent to the old agent is settled on the lines that flow */
    awaitCaughtUp: fromPromise<void, WithAssignment>(notProvided('awaitCaughtUp')),
    /** close the old agent's broker connection where possible */
    fenceAgent: fromPromise<void, WithAssignment>(notProvided('fenceAgent')),
    /** ask the old agent to give its lease back, again and again until stopped (it answers with `agent.released`) */
    askRelease: fromCallback<EventObject, WithAssignment>(() => {
      throw new Error('askRelease not provided');
    }),
    /** record a healthy agent other than the old one (`prefer` first; else the old one, healthy again) as the new active agent; null when none */
    chooseCandidate: fromPromise<Assignment | null, WithAssignment & { prefer: string | null }>(notProvided('chooseCandidate')),
    /** persist phase draining, wait for the old queue to lose its consumer, move it, verify it empty */
    moveQueue: fromPromise<Assignment, WithAssignment>(notProvided('moveQueue')),
    /** persist phase replaying */
    enterReplaying: fromPromise<Assignment, WithAssignment>(notProvided('enterReplaying')),
    /** persist phase normal, lock = 0; close the switch record */
    completeSwitch: fromPromise<Assignment, WithAssignment & { replayed: number }>(notProvided('completeSwitch')),
  },
  actions: {
    setAssignment: assign({
      assignment: (_, params: { assignment: Assignment | null }) => params.assignment,
    }),
    setReason: assign({ reason: (_, params: { reason: string }) => params.reason }),
    setReplayed: assign({ replayed: ({ event }) => (event.type === 'dispatcher.replayed' ? event.replayed : 0) }),
    setHandover: assign({
      handover: ({ event }) => (event.type === 'coordinator.handover' ? { to: event.to, by: event.by } : null),
      reason: ({ event }) => (event.type === 'coordinator.handover' ? `planned handover (by ${event.by})${event.to ? ` to ${event.to}` : ''}` : ''),
    }),
    clearHandover: assign({ handover: null }),
    emitReleased: emit(({ context, event }) => ({
      type: 'handover.released' as const,
      assignment: context.assignment!,
      agentId: context.assignment!.previousAgent!,
      incarnation: event.type === 'agent.released' ? event.incarnation : '',
    })),
    emitFallback: emit(({ context }, params: { why: string }) => ({
      type: 'handover.fallback' as const,
      assignment: context.assignment!,
      agentId: context.assignment!.previousAgent!,
      why: params.why,
    })),
    emitActive: emit(({ context }) => ({ type: 'coordinator.active' as const, assignment: context.assignment! })),
    emitQuiesce: emit({ type: 'coordinator.quiesce' as const }),
    emitAwaiting: emit({ type: 'coordinator.awaiting' as const }),
    emitChecked: emit(({ context }, params: { result: CheckVerdict }) => ({
      type: 'coordinator.checked' as const,
      assignment: context.assignment!,
      result: params.result,
    })),
    emitStarted: emit(({ context }) => ({ type: 'switch.started' as const, assignment: context.assignment!, reason: context.reason })),
    emitPhase: emit(({ context }, params: { phase: Phase | 'awaiting-candidate' }) => ({
      type: 'switch.phase' as const,
      assignment: context.assignment!,
      phase: params.phase,
    })),
    emitCompleted: emit(({ context }) => ({ type: 'switch.completed' as const, assignment: context.assignment! })),
  },
  guards: {
    found: (_, params: { assignment: Assignment | null }) => params.assignment !== null,
    inPhase: (_, params: { assignment: Assignment | null; phase: Phase }) => params.assignment?.phase === params.phase,
    // the old agent chosen again reads as not recorded: a restarted runtime fences and chooses again (harmless)
    candidateRecorded: (_, params: { assignment: Assignment | null }) =>
      params.assignment !== null && params.assignment.agentId !== params.assignment.previousAgent,
    isActiveAgent: ({ context, event }) => event.type === 'agent.dead' && event.agentId === context.assignment?.agentId,
    planned: ({ context }) => context.handover !== null,
    /** the old agent, for the epoch it held (the switch raised it by one) */
    releasedByOld: ({ context, event }) =>
      event.type === 'agent.released' && event.agentId === context.assignment?.previousAgent && event.epoch === context.assignment.epoch - 1,
    oldAgentDied: ({ context, event }) => event.type === 'agent.dead' && event.agentId === context.assignment?.previousAgent,
    /** whether the runtime holds this agent dead now (its agent actor is in `dead`). Deaths that
     * arrive while the coordinator cannot act on them (loading, electing, mid-switch) are not
     * remembered here: the agent actor remembers them, and this asks it at every way into normal. */
    agentDead: (_, _params: { agentId: string }) => false,
    mustSwitch: (_, params: { result: CheckVerdict }) => params.result.verdict === 'switch',
    started: (_, params: { result: BeginResult }) => params.result.kind === 'started',
  },
  delays: {
    checkAgentLoopTime: ({ context }) => context.checkAgentLoopTime,
    retryDelay: ({ context }) => context.retryDelay,
    releaseTimeout: ({ context }) => context.releaseTimeout,
    catchUpTimeout: ({ context }) => context.catchUpTimeout,
  },
}).createMachine({
  id: 'coordinator',
  context: ({ input }) => ({
    assignment: null,
    reason: '',
    replayed: 0,
    checkAgentLoopTime: input.checkAgentLoopTime,
    retryDelay: input.retryDelay ?? 1000,
    handover: null,
    releaseTimeout: input.releaseTimeout ?? 3000,
    catchUpTimeout: input.catchUpTimeout ?? 1500,
  }),
  initial: 'following',
  on: {
    'coordinator.stop': '.stopped',
    'leader.lost': '.following',
  },
  states: {
    following: {
      on: { 'leader.won': 'loading' },
    },
    loading: {
      // a planned handover belongs to the term that began it: a resumed switch fences
      entry: 'clearHandover',
      invoke: {
        src: 'loadAssignment',
        onDone: [
          { guard: { type: 'found', params: ({ event }) => ({ assignment: event.output }) }, target: 'routing', actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) } },
          { target: 'electing' },
        ],
        onError: 'loadBackoff',
      },
    },
    loadBackoff: { after: { retryDelay: 'loading' } },
    /** resumes the recorded phase (a restarted runtime continues the step it left) */
    routing: {
      always: [
        { guard: { type: 'inPhase', params: ({ context }) => ({ assignment: context.assignment, phase: 'normal' }) }, target: 'adopting' },
        { guard: { type: 'inPhase', params: ({ context }) => ({ assignment: context.assignment, phase: 'draining' }) }, target: 'draining' },
        { guard: { type: 'inPhase', params: ({ context }) => ({ assignment: context.assignment, phase: 'replaying' }) }, target: 'replaying' },
        { guard: { type: 'candidateRecorded', params: ({ context }) => ({ assignment: context.assignment }) }, target: 'switching.resumeChosen' },
        { target: 'switching.quiescing' },
      ],
    },
    electing: {
      invoke: {
        src: 'electAgent',
        onDone: [
          {
            guard: { type: 'found', params: ({ event }) => ({ assignment: event.output }) },
            target: 'adopting',
            actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
          },
          { target: 'awaiting' },
        ],
        onError: 'electBackoff',
      },
    },
    electBackoff: { after: { retryDelay: 'electing' } },
    /** the recorded (or just elected) agent is used, unless it is already dead: its death may have
     * come while this runtime followed, loaded or elected, when no one acted on it */
    adopting: {
      always: [
        {
          guard: { type: 'agentDead', params: ({ context }) => ({ agentId: context.assignment!.agentId }) },
          target: 'switching',
          actions: { type: 'setReason', params: ({ context }) => ({ reason: `agent ${context.assignment!.agentId} already dead when adopted` }) },
        },
        { target: 'normal', actions: 'emitActive' },
      ],
    },
    awaiting: {
      entry: 'emitAwaiting',
      on: { 'agent.healthy': 'electing' },
    },
    normal: {
      initial: 'idle',
      entry: 'clearHandover',
      on: {
        'agent.dead': {
          guard: 'isActiveAgent',
          target: 'switching',
          actions: { type: 'setReason', params: ({ event }) => ({ reason: `agent ${event.agentId} ${event.reason}` }) },
        },
        'coordinator.handover': { target: 'switching', actions: 'setHandover' },
      },
      states: {
        idle: { after: { checkAgentLoopTime: 'checking' } },
        checking: {
          invoke: {
            src: 'checkAgent',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onDone: [
              {
                guard: { type: 'mustSwitch', params: ({ event }) => ({ result: event.output }) },
                target: '#coordinator.switching',
                actions: [
                  { type: 'emitChecked', params: ({ event }) => ({ result: event.output }) },
                  { type: 'setReason', params: ({ event }) => ({ reason: `periodic check: ${(event.output as { why: string }).why}` }) },
                ],
              },
              { target: 'idle', actions: { type: 'emitChecked', params: ({ event }) => ({ result: event.output }) } },
            ],
            onError: 'idle',
          },
        },
      },
    },
    switching: {
      initial: 'begin',
      states: {
        begin: {
          invoke: {
            src: 'beginSwitch',
            input: ({ context }) => ({ assignment: context.assignment!, reason: context.reason, planned: context.handover !== null }),
            onDone: [
              {
                guard: { type: 'started', params: ({ event }) => ({ result: event.output }) },
                target: 'quiescing',
                actions: [
                  { type: 'setAssignment', params: ({ event }) => ({ assignment: (event.output as { assignment: Assignment }).assignment }) },
                  'emitStarted',
                ],
              },
              { target: '#coordinator.loading' },
            ],
            onError: 'beginBackoff',
          },
        },
        beginBackoff: { after: { retryDelay: 'begin' } },
        quiescing: {
          entry: ['emitQuiesce', { type: 'emitPhase', params: { phase: 'switching' } }],
          on: { 'dispatcher.quiesced': [{ guard: 'planned', target: 'catchingUp' }, { target: 'fencing' }] },
        },
        catchingUp: {
          invoke: {
            src: 'awaitCaughtUp',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onDone: 'releasing',
            onError: 'releasing',
          },
          on: {
            'agent.dead': { guard: 'oldAgentDied', target: 'fencing', actions: { type: 'emitFallback', params: { why: 'it was declared dead while it wrote what it had been sent' } } },
          },
          after: { catchUpTimeout: 'releasing' },
        },
        releasing: {
          invoke: {
            src: 'askRelease',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onError: { target: 'fencing', actions: { type: 'emitFallback', params: ({ event }) => ({ why: `the release request could not be sent: ${(event.error as Error).message}` }) } },
          },
          on: {
            'agent.released': { guard: 'releasedByOld', target: 'choosing', actions: 'emitReleased' },
            'agent.dead': { guard: 'oldAgentDied', target: 'fencing', actions: { type: 'emitFallback', params: { why: 'it was declared dead before it answered' } } },
          },
          after: {
            releaseTimeout: { target: 'fencing', actions: { type: 'emitFallback', params: ({ context }) => ({ why: `it did not answer within ${context.releaseTimeout} ms` }) } },
          },
        },
        fencing: {
          invoke: {
            src: 'fenceAgent',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onDone: 'choosing',
            onError: 'choosing',
          },
        },
        choosing: {
          invoke: {
            src: 'chooseCandidate',
            input: ({ context }) => ({ assignment: context.assignment!, prefer: context.handover?.to ?? null }),
            onDone: [
              {
                guard: { type: 'found', params: ({ event }) => ({ assignment: event.output }) },
                target: '#coordinator.draining',
                actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
              },
              { target: 'awaitingCandidate' },
            ],
            onError: 'chooseBackoff',
          },
        },
        chooseBackoff: { after: { retryDelay: 'choosing' } },
        awaitingCandidate: {
          entry: [{ type: 'emitPhase', params: { phase: 'awaiting-candidate' } }, 'emitAwaiting'],
          on: { 'agent.healthy': 'choosing' },
        },
        /** after a restart with the candidate recorded: settle the (new) dispatcher first */
        resumeChosen: {
          entry: 'emitQuiesce',
          on: { 'dispatcher.quiesced': '#coordinator.draining' },
        },
      },
    },
    draining: {
      entry: { type: 'emitPhase', params: { phase: 'draining' } },
      invoke: {
        src: 'moveQueue',
        input: ({ context }) => ({ assignment: context.assignment! }),
        onDone: { target: 'replaying', actions: { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) } },
        onError: 'drainBackoff',
      },
    },
    drainBackoff: { after: { retryDelay: 'draining' } },
    replaying: {
      initial: 'entering',
      states: {
        entering: {
          invoke: {
            src: 'enterReplaying',
            input: ({ context }) => ({ assignment: context.assignment! }),
            onDone: {
              target: 'sending',
              actions: [
                { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
                { type: 'emitPhase', params: { phase: 'replaying' } },
                'emitActive',
              ],
            },
            onError: 'enterBackoff',
          },
        },
        enterBackoff: { after: { retryDelay: 'entering' } },
        sending: {
          on: { 'dispatcher.replayed': { target: 'completing', actions: 'setReplayed' } },
        },
        completing: {
          invoke: {
            src: 'completeSwitch',
            input: ({ context }) => ({ assignment: context.assignment!, replayed: context.replayed }),
            onDone: [
              {
                // the new agent died (or hung) while the switch ran: the switch is persisted complete,
                // so the next one can begin from its epoch
                guard: { type: 'agentDead', params: ({ event }) => ({ agentId: event.output.agentId }) },
                target: '#coordinator.switching',
                actions: [
                  { type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) },
                  'emitCompleted',
                  { type: 'setReason', params: ({ event }) => ({ reason: `agent ${event.output.agentId} dead when the switch to it completed` }) },
                ],
              },
              {
                target: '#coordinator.normal',
                actions: [{ type: 'setAssignment', params: ({ event }) => ({ assignment: event.output }) }, 'emitCompleted'],
              },
            ],
            onError: 'completeBackoff',
          },
        },
        completeBackoff: { after: { retryDelay: 'completing' } },
      },
    },
    stopped: { type: 'final' },
  },
});

export type CoordinatorMachine = typeof coordinatorMachine;
