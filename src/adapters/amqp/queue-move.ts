/**
 * The amqplib adapter's client-side queue move (used when no management API is configured): consume
 * `from` on a channel of its own, republish each message to `to` through the confirm window, and ack
 * it once confirmed, until `from` is empty. `wanted` is asked as each message arrives and again as it
 * goes out: once it says why not, this and every later delivery go back in place, so what moved is a
 * prefix and the rest stays in `from`, in order.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { delay } from '../../clock.ts';
import { type BatonError, unwantedMove } from '../../errors.ts';
import type { Clock, PublishOptions } from '../../ports.ts';
import type { ConfirmWindow } from './confirm-window.ts';
import { safe } from './consumers.ts';

/** The state of one move, shared by the deliveries and the wait. */
interface Progress {
  moved: number;
  outstanding: number;
  failure: Error | null;
}

export function createQueueMove(deps: {
  clock: Clock;
  confirms: ConfirmWindow;
  connection(): ChannelModel | null;
  adminChannel(): Promise<Channel>;
  unavailable(cause: unknown): BatonError;
}): (from: string, to: string, opts?: PublishOptions) => Promise<number> {
  /** One delivery of `from`: republished to `to`, acked once confirmed; put back once the move is unwanted. */
  function forward(ch: Channel, msg: ConsumeMessage, from: string, to: string, p: Progress, wanted?: () => string | null): void {
    // once unwanted, this and every later delivery go back in place (a requeue keeps its position)
    const why = p.failure ? 'stopped' : (wanted?.() ?? null);
    if (why) {
      p.failure ??= unwantedMove(from, why, p.moved);
      safe(() => ch.nack(msg, false, true));
      return;
    }
    p.outstanding++;
    const { messageId, headers, contentType, deliveryMode } = msg.properties;
    // asked again as it goes out (after a pause or a reconnect it may no longer be wanted)
    deps.confirms.enqueue(to, msg.content, { messageId, headers, contentType, persistent: deliveryMode === 2, mandatory: true }, '', wanted).then(
      () => {
        safe(() => ch.ack(msg));
        p.moved++;
        p.outstanding--;
      },
      (err: Error) => {
        p.failure ??= err;
        p.outstanding--;
      },
    );
  }

  /** Until `from` is empty with nothing under way, or the move failed. */
  async function untilEmpty(from: string, p: Progress): Promise<void> {
    const admin = await deps.adminChannel();
    for (;;) {
      if (p.failure) return;
      const { messageCount } = await admin.checkQueue(from);
      if (messageCount === 0 && p.outstanding === 0) return;
      await delay(deps.clock, 20);
    }
  }

  return async function move(from, to, opts = {}) {
    const conn = deps.connection();
    if (!conn) throw deps.unavailable('not connected');
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    const p: Progress = { moved: 0, outstanding: 0, failure: null };
    try {
      await ch.prefetch(500);
      const { consumerTag } = await ch.consume(from, (msg) => {
        if (msg) forward(ch, msg, from, to, p, opts.wanted);
      });
      await untilEmpty(from, p);
      await ch.cancel(consumerTag);
      // every republish under way is finished first, failed ones too (and the others acked): closing
      // the channel with one confirmed but unacked would put it back in `from`, a copy behind the gap
      while (p.outstanding > 0) await delay(deps.clock, 5);
      if (p.failure) throw p.failure;
      return p.moved;
    } finally {
      await ch.close().catch(() => {});
    }
  };
}
