/**
 * Dispatcher statechart: the single mailbox through which every accepted message passes, so
 * that sending, parking and draining parked rows never race.
 *
 * States
 * - parking     no target to send to (before the first agent is chosen, or during a switch):
 *               each message is parked durably in `message_queues`.
 * - replaying   a target is known; parked rows are sent to it oldest first, in rounds, each of
 *               which sends the rows parked when it began (so no round chases the incoming load).
 *   - catchingUp  the first round. Messages that arrive meanwhile are parked behind the rows
 *                 (counted), so the line stays in order and a long backlog costs no memory.
 *   - closing     the last round, for what was parked during the first. Nothing is parked any
 *                 more: messages that arrive are held in the mailbox's context, in arrival order,
 *                 unanswered, and published (in that order) once the last parked row is out. So
 *                 a replay takes at most two rounds whatever the incoming rate, and a held
 *                 message never overtakes a parked one.
 * - replayBackoff  a round failed; messages are parked.
 * - sending     parked rows are gone; each message is published straight to the target queue.
 * - quiescing   a switch began (or the leadership was lost): in-flight publishes to the old
 *               queue are confirmed and parks committed before anything is moved; new messages
 *               are parked. What comes after is a state, not a flag:
 *   - thenParking    (the default) → parking once settled.
 *   - thenReplaying  a resume arrived while settling (a leadership flap: the coordinator leads
 *                    again and names its agent before the settle ends) → replaying to that
 *                    target once settled.
 * - stopping    `stop()` was called: in-flight publishes and parks are settled; new messages are
 *               refused.
 * - stopped     final.
 *
 * Transitions
 * - parking `dispatcher.resume` → replaying (with the target).
 * - replaying.catchingUp done → closing if anything was parked while it ran, else → sending;
 *   replaying.closing done → sending, publishing the held messages first, in order.
 *   Either round's error → replayBackoff (the held messages are parked first, in order), which
 *   after `retryDelay` → replaying.
 * - sending / replaying / replayBackoff `dispatcher.quiesce` → quiescing; `dispatcher.resume`
 *   with a new target → replaying. Leaving `closing` other than by its done parks the held
 *   messages first, in order: they are younger than every parked row, so parking them keeps the
 *   line.
 * - quiescing `dispatcher.resume` → thenReplaying (the latest target wins); `dispatcher.quiesce`
 *   → thenParking; done (or error: what is unconfirmed is reported to its callers by the broker
 *   adapter, never silently dropped) → parking or replaying, as the substate says.
 * - any state but stopped: `dispatcher.stop` → stopping → stopped once settled; stopping ignores
 *   resume and quiesce.
 *
 * Emitted: `dispatcher.quiesced` on entering parking (and when asked to quiesce while parking:
 * nothing is in flight then), `dispatcher.replayed` with the number of rows replayed when it starts
 * sending directly.
 */
import { assign, emit, enqueueActions, setup, fromPromise, stateIn } from 'xstate';

/** Where messages go while sending: the active agent's queue under an epoch. */
export interface DispatchTarget {
  agentId: string;
  queue: string;
  epoch: number;
}

/** One accepted message on its way: the runtime fills it, the provided actions deliver it. */
export interface OutgoingMessage {
  deviceId: string;
  seq: number;
  method: 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  path: string;
  body: unknown;
  key?: string;
}

/** Callbacks of the `dispatch()` promise; the provided actions settle them. */
export interface Reply {
  resolve(value: { deviceId: string; seq: number }): void;
  reject(error: Error): void;
}

export type DispatcherEvent =
  | { type: 'dispatch.message'; message: OutgoingMessage; reply: Reply }
  | { type: 'dispatcher.resume'; target: DispatchTarget }
  | { type: 'dispatcher.quiesce' }
  | { type: 'dispatcher.stop' };

export type DispatcherEmitted = { type: 'dispatcher.quiesced' } | { type: 'dispatcher.replayed'; agentId: string; replayed: number };

export interface DispatcherContext {
  target: DispatchTarget | null;
  parkedWhileReplaying: number;
  /** messages held (unanswered) while the last round runs, newest first */
  held: Held | null;
  /** rows replayed by earlier rounds of this replay */
  replayedSoFar: number;
  retryDelay: number;
}

type DispatchEvent = Extract<DispatcherEvent, { type: 'dispatch.message' }>;

/** An immutable list, newest first: holding a message costs O(1) and no snapshot (nor xstate/graph's
 * exploration) sees another's list change under it; a copied array would cost O(n) per message. */
interface Held {
  event: DispatchEvent;
  before: Held | null;
}

const arrivalOrder = (held: Held | null): DispatchEvent[] => {
  const out: DispatchEvent[] = [];
  for (let h = held; h; h = h.before) out.push(h.event);
  return out.reverse();
};

export const dispatcherMachine = setup({
  types: {
    context: {} as DispatcherContext,
    events: {} as DispatcherEvent,
    emitted: {} as DispatcherEmitted,
    input: {} as { retryDelay?: number },
  },
  actions: {
    /** publish the message to `context.target`; settle the reply on confirm */
    send: (_, _params: { target: DispatchTarget; event: DispatchEvent }) => {},
    /** park the message in `message_queues`; settle the reply on commit */
    park: (_, _params: { event: DispatchEvent }) => {},
    /** refuse the message: the runtime is stopping */
    refuse: (_, _params: { event: DispatchEvent }) => {},
    emitQuiesced: emit({ type: 'dispatcher.quiesced' as const }),
    emitReplayed: emit(({ context }, params: { replayed: number }) => ({
      type: 'dispatcher.replayed' as const,
      agentId: context.target!.agentId,
      replayed: context.replayedSoFar + params.replayed,
    })),
    addReplayed: assign({ replayedSoFar: ({ context }, params: { replayed: number }) => context.replayedSoFar + params.replayed }),
    resetReplayed: assign({ replayedSoFar: 0 }),
    setTarget: assign({
      target: ({ event }) => (event.type === 'dispatcher.resume' ? event.target : null),
    }),
    countParked: assign({ parkedWhileReplaying: ({ context }) => context.parkedWhileReplaying + 1 }),
    resetParked: assign({ parkedWhileReplaying: 0 }),
    hold: assign({ held: ({ context, event }) => (event.type === 'dispatch.message' ? { event, before: context.held } : context.held) }),
    // (`as never`: an action in setup() cannot name its siblings in its types; xstate resolves the
    // name at run time, through the implementations given to .provide())
    /** the last parked row is out: the held messages go out next, in arrival order */
    sendHeld: enqueueActions(({ context, enqueue }) => {
      for (const event of arrivalOrder(context.held)) enqueue({ type: 'send', params: { target: context.target!, event } } as never);
      enqueue.assign({ held: null });
    }),
    /** the last round was left: the held messages join the parked line, behind every parked row */
    parkHeld: enqueueActions(({ context, enqueue }) => {
      for (const event of arrivalOrder(context.held)) enqueue({ type: 'park', params: { event } } as never);
      enqueue.assign({ held: null });
    }),
  },
  actors: {
    /** one round: send the rows parked when it begins (after the parks under way commit) to the
     * target, oldest first, with confirms; delete them. Rows parked while it runs are the next
     * round's, so a round ends under any incoming load. Resolves with the number sent. */
    replayParked: fromPromise<number, { target: DispatchTarget }>(async () => {
      throw new Error('replayParked not provided');
    }),
    /** wait until every publish in flight is confirmed and every park committed */
    settle: fromPromise<void, void>(async () => {
      throw new Error('settle not provided');
    }),
  },
  guards: {
    parkedMeanwhile: ({ context }) => context.parkedWhileReplaying > 0,
  },
  delays: {
    retryDelay: ({ context }) => context.retryDelay,
  },
}).createMachine({
  id: 'dispatcher',
  context: ({ input }) => ({ target: null, parkedWhileReplaying: 0, held: null, replayedSoFar: 0, retryDelay: input.retryDelay ?? 500 }),
  initial: 'parking',
  on: {
    'dispatcher.stop': '.stopping',
  },
  states: {
    parking: {
      entry: 'emitQuiesced',
      on: {
        'dispatch.message': { actions: { type: 'park', params: ({ event }) => ({ event }) } },
        'dispatcher.resume': { target: 'replaying', actions: ['setTarget', 'resetReplayed'] },
        'dispatcher.quiesce': { actions: 'emitQuiesced' },
      },
    },
    replaying: {
      initial: 'catchingUp',
      on: {
        'dispatcher.quiesce': 'quiescing',
        'dispatcher.resume': { target: 'replaying', reenter: true, actions: ['setTarget', 'resetReplayed'] },
      },
      states: {
        catchingUp: {
          entry: 'resetParked',
          invoke: {
            src: 'replayParked',
            input: ({ context }) => ({ target: context.target! }),
            onDone: [
              {
                guard: 'parkedMeanwhile',
                target: 'closing',
                actions: { type: 'addReplayed', params: ({ event }) => ({ replayed: event.output }) },
              },
              { target: '#dispatcher.sending', actions: { type: 'emitReplayed', params: ({ event }) => ({ replayed: event.output }) } },
            ],
            onError: '#dispatcher.replayBackoff',
          },
          on: {
            'dispatch.message': {
              actions: [{ type: 'park', params: ({ event }) => ({ event }) }, 'countParked'],
            },
          },
        },
        closing: {
          invoke: {
            src: 'replayParked',
            input: ({ context }) => ({ target: context.target! }),
            onDone: {
              target: '#dispatcher.sending',
              actions: ['sendHeld', { type: 'emitReplayed', params: ({ event }) => ({ replayed: event.output }) }],
            },
            onError: { target: '#dispatcher.replayBackoff', actions: 'parkHeld' },
          },
          on: {
            'dispatch.message': { actions: 'hold' },
            'dispatcher.quiesce': { target: '#dispatcher.quiescing', actions: 'parkHeld' },
            'dispatcher.resume': { target: '#dispatcher.replaying', reenter: true, actions: ['parkHeld', 'setTarget', 'resetReplayed'] },
            'dispatcher.stop': { target: '#dispatcher.stopping', actions: 'parkHeld' },
          },
        },
      },
    },
    replayBackoff: {
      after: { retryDelay: 'replaying' },
      on: {
        'dispatch.message': { actions: { type: 'park', params: ({ event }) => ({ event }) } },
        'dispatcher.quiesce': 'quiescing',
        'dispatcher.resume': { target: 'replaying', actions: ['setTarget', 'resetReplayed'] },
      },
    },
    sending: {
      on: {
        'dispatch.message': {
          actions: {
            type: 'send',
            params: ({ context, event }) => ({ target: context.target!, event }),
          },
        },
        'dispatcher.quiesce': 'quiescing',
        'dispatcher.resume': { target: 'replaying', actions: ['setTarget', 'resetReplayed'] },
      },
    },
    quiescing: {
      initial: 'thenParking',
      // one settle for the whole quiesce, whatever resumes and quiesces arrive meanwhile
      invoke: {
        src: 'settle',
        onDone: [
          { guard: stateIn('#dispatcher.quiescing.thenReplaying'), target: 'replaying', actions: 'resetReplayed' },
          { target: 'parking' },
        ],
        onError: [
          { guard: stateIn('#dispatcher.quiescing.thenReplaying'), target: 'replaying', actions: 'resetReplayed' },
          { target: 'parking' },
        ],
      },
      on: {
        'dispatch.message': { actions: { type: 'park', params: ({ event }) => ({ event }) } },
        'dispatcher.resume': { target: '.thenReplaying', actions: 'setTarget' },
        'dispatcher.quiesce': '.thenParking',
      },
      states: {
        thenParking: {},
        thenReplaying: {},
      },
    },
    stopping: {
      invoke: { src: 'settle', onDone: 'stopped', onError: 'stopped' },
      on: {
        'dispatch.message': { actions: { type: 'refuse', params: ({ event }) => ({ event }) } },
        // already settling towards stopped: nothing to resume, nothing more to quiesce
        'dispatcher.stop': {},
        'dispatcher.resume': {},
        'dispatcher.quiesce': {},
      },
    },
    stopped: {
      type: 'final',
    },
  },
});

export type DispatcherMachine = typeof dispatcherMachine;
