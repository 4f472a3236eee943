/**
 * Dispatcher statechart: the single mailbox through which every accepted message passes, so
 * that sending, parking and draining parked rows never race.
 *
 * States
 * - parking    no target to send to (before the first agent is chosen, or during a switch):
 *              each message is parked durably in `message_queues`.
 * - replaying  a target is known; parked rows are sent to it oldest first. Messages that arrive
 *              meanwhile are parked behind them (counted), so the line stays in order.
 * - sending    parked rows are gone; each message is published straight to the target queue.
 * - quiescing  a switch began: in-flight publishes to the old queue are confirmed before
 *              anything is moved; new messages are parked.
 * - stopping   `stop()` was called: in-flight publishes and parks are settled; new messages are
 *              refused.
 * - stopped    final.
 *
 * Transitions
 * - parking  `dispatcher.resume` → replaying (with the target).
 * - replaying done → replaying again if anything was parked while it ran, else → sending;
 *            error → replayBackoff, which after `retryDelay` → replaying.
 * - sending / replaying / replayBackoff `dispatcher.quiesce` → quiescing; `dispatcher.resume`
 *            with a new target → replaying.
 * - quiescing done → parking (an error also lands in parking: what is unconfirmed is reported
 *            to its callers by the broker adapter, never silently dropped).
 * - any state but stopped: `dispatcher.stop` → stopping → stopped once settled.
 *
 * Emitted: `dispatcher.quiesced` on entering parking (and when asked to quiesce while parking:
 * nothing is in flight then), `dispatcher.replayed` with the number of rows replayed when it starts
 * sending directly.
 */
import { assign, emit, setup, fromPromise } from 'xstate';

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
  /** epoch at acceptance; the wire carries the target's epoch when it is sent */
  epoch: number;
}

/** Callbacks of the `dispatch()` promise; the provided actions settle them. */
export interface Reply {
  resolve(value: { deviceId: string; seq: number; epoch: number }): void;
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
  /** rows replayed by earlier rounds of this replay */
  replayedSoFar: number;
  retryDelay: number;
}

type DispatchEvent = Extract<DispatcherEvent, { type: 'dispatch.message' }>;

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
  },
  actors: {
    /** send every parked row to the target, oldest first, with confirms; delete them */
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
  context: ({ input }) => ({ target: null, parkedWhileReplaying: 0, replayedSoFar: 0, retryDelay: input.retryDelay ?? 500 }),
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
      entry: 'resetParked',
      invoke: {
        src: 'replayParked',
        input: ({ context }) => ({ target: context.target! }),
        onDone: [
          {
            guard: 'parkedMeanwhile',
            target: 'replaying',
            reenter: true,
            actions: { type: 'addReplayed', params: ({ event }) => ({ replayed: event.output }) },
          },
          { target: 'sending', actions: { type: 'emitReplayed', params: ({ event }) => ({ replayed: event.output }) } },
        ],
        onError: 'replayBackoff',
      },
      on: {
        'dispatch.message': {
          actions: [{ type: 'park', params: ({ event }) => ({ event }) }, 'countParked'],
        },
        'dispatcher.quiesce': 'quiescing',
        'dispatcher.resume': { target: 'replaying', reenter: true, actions: ['setTarget', 'resetReplayed'] },
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
      invoke: { src: 'settle', onDone: 'parking', onError: 'parking' },
      on: {
        'dispatch.message': { actions: { type: 'park', params: ({ event }) => ({ event }) } },
      },
    },
    stopping: {
      invoke: { src: 'settle', onDone: 'stopped', onError: 'stopped' },
      on: {
        'dispatch.message': { actions: { type: 'refuse', params: ({ event }) => ({ event }) } },
        'dispatcher.stop': {},
      },
    },
    stopped: {
      type: 'final',
    },
  },
});

export type DispatcherMachine = typeof dispatcherMachine;
