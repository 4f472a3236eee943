/**
 * The agent's half of a planned handover: the runtime's release requests on the control channel,
 * taken only when sealed with this agent's key, for this process, naming the epoch it holds (or a
 * later one: a lower epoch is an old request, replayed or late). On one, the agent:
 * 1. gives the lease of that epoch back for good (`Lease.relinquish`): nothing more is written under
 *    it, and no grant of it is taken again, not even one the runtime sent before it asked;
 * 2. gives its queue back (`QueueConsumer.giveBack`): the requests on the wire finish and settle,
 *    their receipts go out, the deliveries it holds return to the queue unsent;
 * 3. answers with a sealed `released` receipt (after those receipts, on the same channel).
 * The runtime repeats a request until answered: one that comes while the give-back runs joins it;
 * one after it is answered again at once (the answer may have been lost with a dropped connection).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { limitedWarn } from '../log-limit.ts';
import type { Broker, Clock } from '../ports.ts';
import { parseReleaseRequest, type ReceiptEvent, type ReleaseRequest } from '../side-channel.ts';
import { seal, unseal } from '../trust.ts';
import type { QueueConsumer } from './consumer.ts';
import type { Lease } from './lease.ts';

export interface ReleaseOptions {
  agentId: string;
  agentKey: Buffer;
  broker: Pick<Broker, 'subscribeEvents' | 'publishEvent'>;
  clock: Clock;
  log: Logger;
  lease: Pick<Lease, 'epoch' | 'incarnation' | 'relinquish'>;
  consumer: Pick<QueueConsumer, 'giveBack' | 'givenBack'>;
  /** where `lease-returned` {epoch} goes once the answer is out */
  events: EventEmitter;
}

export class ReleaseListener {
  /** the give-back under way or done, and the epoch it gave back (null: none asked yet) */
  private giving: { epoch: number; done: Promise<boolean> } | null = null;
  private answered: Array<(epoch: number) => void> = [];
  private asked: Array<(epoch: number) => void> = [];

  constructor(private readonly o: ReleaseOptions) {}

  async start(): Promise<void> {
    const { o } = this;
    const refused = limitedWarn(o.clock, o.log);
    await o.broker.subscribeEvents(
      'control',
      (p) => {
        const sealed = unseal((id) => (id === o.agentId ? o.agentKey : null), 'control', p);
        if ('invalid' in sealed) return; // grants.ts tells of what no runtime sealed for this agent
        const r = parseReleaseRequest(sealed.event);
        if (!r) return; // a lease grant: grants.ts takes it
        if (r.agentId !== o.agentId || r.incarnation !== o.lease.incarnation) return refused('release-other-process', { incarnation: r.incarnation }, 'ignored a release request for another process of this agent');
        if (r.epoch < o.lease.epoch) return refused('release-stale', { epoch: r.epoch, holding: o.lease.epoch }, 'ignored a release request for an epoch older than the lease held (an old request, late or replayed)');
        void this.take(r);
      },
      o.agentId,
    );
  }

  /** Resolves with the epoch once a give-back is asked for (it runs from then on). */
  requested(): Promise<number> {
    if (this.giving) return Promise.resolve(this.giving.epoch);
    return new Promise((resolve) => this.asked.push(resolve));
  }

  /** Resolves with the epoch once a give-back was asked for, done, and answered. */
  returned(): Promise<number> {
    return new Promise((resolve) => this.answered.push(resolve));
  }

  private async take(r: ReleaseRequest): Promise<void> {
    const { o } = this;
    if (!this.giving || r.epoch > this.giving.epoch) {
      o.log.warn({ epoch: r.epoch }, 'the runtime asks for the lease back (planned handover): finishing the requests on the wire, then giving the queue back');
      o.lease.relinquish(r.epoch);
      o.consumer.giveBack(`planned handover: the runtime asked for the lease of epoch ${r.epoch} back`);
      this.giving = { epoch: r.epoch, done: o.consumer.givenBack() };
      for (const w of this.asked.splice(0)) w(r.epoch);
    }
    const giving = this.giving;
    if (!(await giving.done)) return; // consuming again: a newer grant came, the runtime chose it again
    const answer: ReceiptEvent = { type: 'released', agentId: o.agentId, epoch: giving.epoch, incarnation: o.lease.incarnation };
    try {
      await o.broker.publishEvent('receipts', seal(o.agentKey, 'receipts', o.agentId, answer));
    } catch (err) {
      return o.log.warn({ epoch: giving.epoch, err: (err as Error).message }, 'could not send the released receipt; the runtime asks again and is answered then');
    }
    o.log.info({ epoch: giving.epoch }, 'lease given back: the runtime may hand the stream over');
    o.events.emit('lease-returned', { epoch: giving.epoch });
    for (const w of this.answered.splice(0)) w(giving.epoch);
  }
}

/**
 * An active agent told to stop (`AgentHandle.leave`): its heartbeats say `leaving` from now on, so the
 * runtime hands its stream over. `handed-over` once it gave its lease back; `no-handover` when no
 * request came within `waitMs` (no other agent can take the stream) or no answer could be sent
 * within `answerMs` of it (the requests on the wire finish first): it then stops as after a failure.
 */
export async function handOverFirst(o: { release: Pick<ReleaseListener, 'requested' | 'returned'>; clock: Clock; log: Logger; waitMs: number; answerMs: number; leaving(): void }): Promise<'handed-over' | 'no-handover'> {
  o.leaving();
  o.log.warn({ waitMs: o.waitMs }, 'stopping while active: asking the runtime to hand the stream over to another agent first');
  const asked = await within(o.clock, o.release.requested(), o.waitMs);
  const answered = asked === null ? null : await within(o.clock, o.release.returned(), o.answerMs);
  if (answered !== null) return 'handed-over';
  o.log.warn({ asked: asked !== null }, 'no handover completed: stopping as after a failure (the stream fails over once the runtime sees this agent gone)');
  return 'no-handover';
}

/** `p`'s value, or null when it takes more than `ms`. */
async function within<T>(clock: Clock, p: Promise<T>, ms: number): Promise<T | null> {
  let timer: { cancel(): void } | null = null;
  const late = new Promise<null>((resolve) => (timer = clock.setTimeout(() => resolve(null), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    timer!.cancel();
  }
}
