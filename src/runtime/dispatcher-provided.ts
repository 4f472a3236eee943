/**
 * The dispatcher's actions and actors, built from the ports (machines/dispatcher.machine.ts names
 * them): send a message to the target queue, park it, refuse it while stopping; replay the parked
 * rows, settle what is in flight. A message is outstanding in the ledger before it goes out, and
 * withdrawn when it is not accepted after all.
 *
 * Held lines (line-orders.ts): a message whose device's line is held is parked where it would be
 * sent, and the replay leaves the parked rows of lines their orders hold where they are; a line's
 * release (line-release.ts) replays them on the same replay chain.
 */
import type { Logger } from 'pino';
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import { dispatcherMachine, type DispatcherEvent, type DispatcherMachine, type DispatchTarget } from '../../machines/dispatcher.machine.ts';
import type { Broker, Clock, ParkingStore } from '../ports.ts';
import { signMessage } from '../trust.ts';
import type { AppliedAccounting } from './accounting.ts';
import { xstateClock } from './agent-registry.ts';
import type { Leadership } from './leadership.ts';
import type { Metrics } from './metrics.ts';
import type { LineOrders } from './line-orders.ts';
import type { LineRelease } from './line-release.ts';
import type { Parker } from './parker.ts';
import { stopped } from './refusals.ts';
import { ReplayChain } from './replay-chain.ts';

export type DispatcherActor = Actor<DispatcherMachine>;

type DispatchEvent = Extract<DispatcherEvent, { type: 'dispatch.message' }>;

export interface DispatcherDeps {
  broker: Pick<Broker, 'publish' | 'settle'>;
  store: Pick<ParkingStore, 'countParked' | 'fetchParked' | 'deleteParked'>;
  parker: Pick<Parker, 'park' | 'flush' | 'replaying'>;
  accounting: Pick<AppliedAccounting, 'outstanding' | 'withdrawn'>;
  leadership: Pick<Leadership, 'currentTerm' | 'whileThisTerm' | 'notLeader'>;
  metrics: Metrics;
  /** K_s: every message goes out signed with it */
  streamK: Buffer;
  replayBatchSize: number;
  log: Logger;
  /** the lines held (their messages parked, their rows left out of the replay); none when absent */
  lines?: Pick<LineOrders, 'holding' | 'held'>;
  /** counts each park per device, for the release of a line */
  release?: Pick<LineRelease, 'parking'>;
  /** the replay chain, shared with the lines' releases (a chain of its own when absent) */
  chain?: ReplayChain;
  /** told of each message sent straight to an agent's queue (a planned handover's catch-up, catch-up.ts) */
  sent?(deviceId: string, seq: number): void;
}

/** The dispatcher actor, its actions and actors provided. */
export function createDispatcher(d: DispatcherDeps & { clock: Clock; inspect: (e: InspectionEvent) => void }): DispatcherActor {
  return createActor(dispatcherMachine.provide(dispatcherProvided(d)), { input: {}, clock: xstateClock(d.clock), systemId: 'dispatcher', inspect: d.inspect });
}

export function dispatcherProvided(d: DispatcherDeps) {
  const chain = d.chain ?? new ReplayChain();
  return { actions: dispatcherActions(d), actors: dispatcherActors({ ...d, chain }) };
}

function dispatcherActions({ broker, parker, accounting, leadership, metrics, streamK, lines, release, sent }: DispatcherDeps) {
  const { outstanding, withdrawn } = accounting;
  const park = (event: DispatchEvent) => {
    const m = event.message;
    // held in the mailbox when this runtime stopped leading (a pause in the replay's last
    // round): not stored yet, and no longer this runtime's to store
    const term = leadership.currentTerm();
    if (!term) return event.reply.reject(leadership.notLeader());
    outstanding(m.deviceId, m.seq);
    const sameTerm = leadership.whileThisTerm();
    const parked = parker.park(m, term, () => sameTerm() === null);
    release?.parking(m.deviceId, parked);
    parked.then(() => {
      metrics.onDispatched(m.deviceId);
      metrics.parked.inc();
      event.reply.resolve({ deviceId: m.deviceId, seq: m.seq });
    }, (err) => (withdrawn(m.deviceId, m.seq), event.reply.reject(err)));
  };
  return {
    send: (_: unknown, { target, event }: { target: DispatchTarget; event: DispatchEvent }) => {
      const m = event.message;
      // a held line's messages are kept in the database, behind its parked rows, until it is released
      if (lines?.holding(m.deviceId)) return park(event);
      outstanding(m.deviceId, m.seq);
      sent?.(m.deviceId, m.seq);
      broker.publish(target.queue, signMessage(streamK, m), { wanted: leadership.whileThisTerm() }).then(() => {
        metrics.onDispatched(m.deviceId);
        event.reply.resolve({ deviceId: m.deviceId, seq: m.seq });
      }, (err) => (withdrawn(m.deviceId, m.seq), event.reply.reject(err)));
    },
    park: (_: unknown, { event }: { event: DispatchEvent }) => park(event),
    refuse: (_: unknown, { event }: { event: DispatchEvent }) => event.reply.reject(stopped()),
  };
}

/** rows in the first batch of a replay round */
const FIRST_REPLAY_BATCH = 50;

function dispatcherActors({ broker, store, parker, accounting, leadership, streamK, replayBatchSize, log, lines, chain }: DispatcherDeps & { chain: ReplayChain }) {
  return {
    // One replay at a time: a replay the machine left (a new target, a quiesce, a stop) finishes
    // the batch it is in and ends; the next one starts after it, so no row is sent twice.
    // A round sends the rows parked when it begins (the parks under way committed first): rows
    // parked while it runs are the next round's, so a round ends under any incoming load. The rows
    // of the lines held when it begins stay parked: their release replays them. Its first batch is
    // small, so that the new agent has its first messages (and the stream resumes) sooner.
    replayParked: fromPromise(async ({ input, signal }: { input: { target: DispatchTarget }; signal: AbortSignal }): Promise<number> =>
      chain.run(async () => {
        await parker.flush();
        const filter = { except: lines?.held() ?? [] };
        let left = await store.countParked(filter);
        for (let replayed = 0; ; ) {
          if (signal.aborted || left <= 0) return replayed;
          const rows = await store.fetchParked(Math.min(replayed === 0 ? Math.min(FIRST_REPLAY_BATCH, replayBatchSize) : replayBatchSize, left), filter);
          if (rows.length === 0) return replayed;
          // rows another leader parked are outstanding here from now on (those parked here already are)
          for (const r of rows) accounting.outstanding(r.message.deviceId, r.message.seq);
          parker.replaying(rows.map((r) => r.message.deviceId));
          const wanted = leadership.whileThisTerm();
          await Promise.all(rows.map((r) => broker.publish(input.target.queue, signMessage(streamK, r.message), { wanted })));
          await store.deleteParked(rows.map((r) => r.id));
          replayed += rows.length;
          left -= rows.length;
          log.info({ agentId: input.target.agentId, rows: rows.length }, 'parked messages replayed');
        }
      }),
    ),
    settle: fromPromise<void, void>(async () => {
      await chain.idle();
      await broker.settle();
      await parker.flush();
    }),
  };
}
