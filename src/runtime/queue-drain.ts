/**
 * The switch's move of the old agent's queue to the new agent's (the coordinator's `draining`, called
 * from switch-steps.ts moveQueue): wait until the old queue has no consumer (its unacked deliveries
 * are back in it), then move what it holds, in order, through this runtime's connection or, for a
 * deep queue, the management API's shovel; done only when a check after the move finds it empty.
 */
import type { Logger } from 'pino';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import { delay } from '../clock.ts';
import type { Broker, Clock, LeaderTerm, ManagementApi, QueueInfo } from '../ports.ts';
import { agentConnectionName, type topology } from '../topology.ts';

/**
 * Queues up to this deep move through this runtime's own connection even where the management API
 * is set: a short queue (a planned handover's, most failovers') moves in a few ms that way, where a
 * shovel is created, polled every 50 ms and deleted; a deep one moves faster through the shovel.
 */
export const CLIENT_MOVE_MAX = 1000;

export type Drain = (sw: string, from: string, oldAgent: string, to: Assignment, term: LeaderTerm) => Promise<{ moved: number; via: string }>;

/** What a move needs of the switch's kit. */
export interface DrainKit {
  d: { broker: Broker; management: ManagementApi | null; clock: Clock; namespace: string; term: () => LeaderTerm | null };
  log: Logger;
  names: ReturnType<typeof topology>;
  stillLeading(): LeaderTerm;
}

/**
 * Moves the old queue to the new one until it is certainly empty: messages can come back to it
 * after a move (a consumer that attaches again and gives its deliveries back, a connection that
 * drops with deliveries unacked), so it is done only when a check after the move finds no
 * consumer and no message; otherwise it waits for no consumer and moves again.
 */
export function queueMover(k: DrainKit): Drain {
  // One move at a time: a runtime that stepped down mid-move and leads again resumes the switch
  // while its first move may still run (an invoked promise is not stopped with its state); two
  // movers of one queue would interleave its messages.
  let moving: Promise<unknown> = Promise.resolve();
  return (sw, from, oldAgent, to, term) => {
    const run = moving.then(() => drainNow(k, sw, from, oldAgent, to, term));
    moving = run.catch(() => {});
    return run;
  };
}

async function drainNow(k: DrainKit, sw: string, from: string, oldAgent: string, to: Assignment, term: LeaderTerm): Promise<{ moved: number; via: string }> {
  const { d, log, names, stillLeading } = k;
  // asked before each message moves: a runtime that paused mid-move stops as it wakes, past its lease
  const wanted = () => (d.term()?.epoch === term.epoch ? null : 'this runtime no longer leads');
  let moved = 0;
  let round = 0;
  const vias = new Set<string>();
  for (;;) {
    const seen = await noConsumer(k, from, oldAgent);
    await d.broker.assertAgentQueue(to.agentId);
    // no consumer and nothing in it (a planned handover's old agent wrote what it held): that check is the one after the move
    if (round === 0 && (!seen || seen.messages === 0)) return { moved, via: 'none' };
    for (;;) {
      stillLeading();
      const info = await d.broker.queueInfo(from);
      if (!info || info.messages === 0) break;
      round++;
      if (d.management && info.messages > CLIENT_MOVE_MAX) {
        vias.add('shovel');
        await d.management.shovel(`baton-${sw}-${round}`, from, names.agentQueue(to.agentId), { pollMs: 50, sleep: (ms) => delay(d.clock, ms) });
        moved += info.messages;
      } else {
        vias.add('client');
        moved += await d.broker.move(from, names.agentQueue(to.agentId), { wanted });
      }
    }
    const after = await d.broker.queueInfo(from);
    if (!after || (after.consumers === 0 && after.messages === 0)) return { moved, via: [...vias].join('+') || 'none' };
    log.warn({ switchId: sw, from, consumers: after.consumers, messages: after.messages }, 'messages or a consumer came back to the old queue during the move: moving again');
  }
}

/** Waits until a queue has no consumer: its unacked messages are back in it. With the management
 * API, the old agent's connection is closed again every second meanwhile (a close can be missed). */
async function noConsumer({ d, log, stillLeading }: DrainKit, queue: string, agentId: string): Promise<QueueInfo | null> {
  const started = d.clock.monotonic();
  let told = 0;
  let fenced = 0;
  for (;;) {
    stillLeading();
    const info = await d.broker.queueInfo(queue);
    if (!info || info.consumers === 0) return info;
    const waited = d.clock.monotonic() - started;
    if (d.management && waited - fenced >= 1000) {
      fenced = waited;
      await d.management.closeConnections(agentConnectionName(d.namespace, agentId), 'fenced by baton').then(
        (n) => n > 0 && log.warn({ agentId, connections: n }, 'old agent still held its queue: its broker connection closed again'),
        (err: Error) => log.warn({ agentId, err: err.message }, 'could not close the old agent\'s connection; trying again in a second'),
      );
    }
    if (waited - told >= 5000) {
      told = waited;
      log.warn({ agentId, queue, waitedMs: Math.round(waited) }, 'the old agent still holds its queue; waiting for it to give it back or for the broker to drop its connection');
    }
    await delay(d.clock, 50);
  }
}
