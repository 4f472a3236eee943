/**
 * The consumers of the amqplib adapter, each on a channel of its own. Two kinds: a queue consumer
 * ends with its channel (or its connection) and says so through `onLost`; it is never attached
 * again on its own (an agent fenced by closing its connection must not come back to its old
 * queue). An event subscription (`reattach`) is attached again each time the connection is back.
 * A consumer asked for while the connection is down attaches once it is back.
 */
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import type { Delivery, Subscription } from '../../ports.ts';
import { decodeMessage } from '../../wire.ts';

export interface Consumer {
  queue: string;
  prefetch: number;
  onMessage(msg: ConsumeMessage, ch: Channel): void;
  /** declares a per-connection queue on each (re)attach and returns its name */
  prepare?: (ch: Channel) => Promise<string>;
  channel: Channel | null;
  tag: string | null;
  cancelled: boolean;
  /** attached again after a reconnect (event subscriptions); a queue consumer ends with its channel instead */
  reattach: boolean;
  onLost?: () => void;
}

/** Runs an ack or a nack on a channel that may be gone: then the broker redelivers the message to the next consumer. */
export const safe = (fn: () => void): void => {
  try {
    fn();
  } catch {
    // the channel is gone; the broker redelivers the message to the next consumer
  }
};

/** A queue consumer: manual acks, the body decoded as a wire message. */
export function queueConsumer(queue: string, onDelivery: (d: Delivery) => void, { prefetch, onLost }: { prefetch: number; onLost?: () => void }): Consumer {
  return {
    queue,
    prefetch,
    channel: null,
    tag: null,
    cancelled: false,
    reattach: false,
    ...(onLost ? { onLost } : {}),
    onMessage: (msg, ch) => {
      const decoded = decodeMessage(msg.content);
      const d: Delivery = {
        message: 'message' in decoded ? decoded.message : null,
        raw: msg.content,
        redelivered: msg.fields.redelivered,
        ack: () => safe(() => ch.ack(msg)),
        nack: (requeue) => safe(() => ch.nack(msg, false, requeue)),
      };
      if ('malformed' in decoded) d.malformed = decoded.malformed;
      onDelivery(d);
    },
  };
}

export interface Consumers {
  /** registers and attaches a consumer; its subscription cancels or releases it */
  subscribe(consumer: Consumer): Promise<Subscription>;
  /** the connection is back: event subscriptions attach again, and queue consumers that never had a channel */
  reattach(): Promise<void>;
  /** the broker closes: every consumer goes, and its channel (unacked deliveries go back to their queues) */
  closeAll(): Promise<void>;
}

export interface ConsumersDeps {
  log: Logger;
  /** the connection while it is up */
  connection(): ChannelModel | null;
  /** true once the broker is closed */
  stopped(): boolean;
}

/** The subscription a caller holds: it cancels the consumer, or releases it with its channel. */
function subscriptionOf(consumer: Consumer, consumers: Set<Consumer>): Subscription {
  return {
    // stops deliveries; the channel stays open so that work in hand can still be acked
    cancel: async () => {
      consumer.cancelled = true;
      consumers.delete(consumer);
      if (consumer.channel && consumer.tag) await consumer.channel.cancel(consumer.tag).catch(() => {});
    },
    // closing the channel requeues its unacked deliveries as the consumer goes, in one step at the broker
    release: async () => {
      consumer.cancelled = true;
      consumers.delete(consumer);
      await consumer.channel?.close().catch(() => {});
    },
  };
}

export function createConsumers(deps: ConsumersDeps): Consumers {
  const { log } = deps;
  const consumers = new Set<Consumer>();
  const channels = new Set<Channel>();

  /** A queue consumer's channel closed (or its connection): the consumer is over. */
  function lose(consumer: Consumer): void {
    if (consumer.reattach || consumer.cancelled || deps.stopped()) return;
    consumer.cancelled = true;
    consumers.delete(consumer);
    consumer.onLost?.();
  }

  async function attach(consumer: Consumer): Promise<void> {
    const conn = deps.connection();
    if (!conn) return; // attached by reattach() once the connection is back
    const ch = await conn.createChannel();
    channels.add(ch);
    ch.on('close', () => {
      channels.delete(ch);
      lose(consumer);
    });
    ch.on('error', (err: Error) => log.warn({ err: err.message, queue: consumer.queue }, 'consumer channel error'));
    await ch.prefetch(consumer.prefetch);
    if (consumer.prepare) consumer.queue = await consumer.prepare(ch);
    const { consumerTag } = await ch.consume(consumer.queue, (msg) => {
      if (msg) consumer.onMessage(msg, ch);
    });
    consumer.channel = ch;
    consumer.tag = consumerTag;
  }

  return {
    subscribe(consumer) {
      consumers.add(consumer);
      const subscription = subscriptionOf(consumer, consumers);
      return attach(consumer).then(
        () => subscription,
        (err: Error) => {
          // the connection dropped while attaching: an event subscription stays registered and is
          // attached again with the connection (reattach() does it)
          // (so does a queue consumer that never got a channel: it was asked for as the connection went)
          if ((consumer.reattach || consumer.channel === null) && consumers.has(consumer) && !deps.stopped() && /Channel ended|Connection closed/.test(err.message)) {
            log.warn({ queue: consumer.queue, err: err.message }, 'connection lost while subscribing; the consumer attaches when it is back');
            return subscription;
          }
          consumers.delete(consumer);
          throw err;
        },
      );
    },

    async reattach() {
      // event subscriptions come back; a queue consumer only if it was asked for while disconnected and
      // never attached (one that was attached ended with its channel: lose() removed it)
      for (const consumer of consumers) if ((consumer.reattach || consumer.channel === null) && !consumer.cancelled) await attach(consumer);
    },

    async closeAll() {
      consumers.clear();
      for (const ch of [...channels]) await ch.close().catch(() => {});
    },
  };
}
