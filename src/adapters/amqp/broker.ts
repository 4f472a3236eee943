/**
 * The Broker port over amqplib: a confirm channel with a bounded window of unconfirmed
 * publishes, mandatory routing, and reconnection with backoff that re-establishes the event
 * subscriptions and republishes, in order, whatever was not confirmed when the connection dropped.
 * A queue consumer is not re-established: it ends with its channel and says so (`onLost`); an agent
 * fenced by closing its connection must not come back to its old queue on its own.
 *
 * Assembled from its parts, each in a file of its own: the connection and its reconnect
 * (connection.ts), the confirm window (confirm-window.ts), the consumers (consumers.ts), the side
 * channels (side-channels.ts), the queue declarations (queues.ts) and the client-side queue move
 * (queue-move.ts).
 */
import { BatonError } from '../../errors.ts';
import type { Broker, WireMessage } from '../../ports.ts';
import { topology } from '../../topology.ts';
import { encodeMessage, messageId, wireHeaders } from '../../wire.ts';
import { createConfirmWindow } from './confirm-window.ts';
import { AmqpConnection, type ConnectionOptions } from './connection.ts';
import { createConsumers, queueConsumer } from './consumers.ts';
import { createQueueMove } from './queue-move.ts';
import { createQueueAdmin } from './queues.ts';
import { createSideChannels, declareSideChannels } from './side-channels.ts';

export interface AmqpBrokerOptions extends ConnectionOptions {
  queueType: 'classic' | 'quorum';
  /** publishes sent but not yet confirmed, at most */
  maxUnconfirmed: number;
}

/** The Broker port on RabbitMQ, under a namespace. */
export function createAmqpBroker(opts: AmqpBrokerOptions): Broker {
  const log = opts.logger;
  const names = topology(opts.namespace);
  const confirms = createConfirmWindow({ maxUnconfirmed: opts.maxUnconfirmed, channel: () => link.publisher(), stopped: () => link.closed() });
  const consumers = createConsumers({ log, connection: () => link.connection(), stopped: () => link.closed() });
  const link = new AmqpConnection(opts, {
    async ready(pub) {
      pub.on('return', (msg) => {
        if (msg.properties.messageId) confirms.returned(msg.properties.messageId as string);
      });
      pub.on('drain', confirms.pump);
      await declareSideChannels(pub, names);
    },
    async resume() {
      // what was unconfirmed when the last channel closed goes first, in its order (before anything
      // published while the consumers attach); then the event subscriptions come back
      confirms.resume();
      await consumers.reattach();
    },
    dropped: () => confirms.dropped(),
  });
  const sideChannels = createSideChannels({ names, log, confirms, consumers, publisher: () => link.publisher() });
  const queues = createQueueAdmin({ names, queueType: opts.queueType, adminChannel: () => link.adminChannel() });
  const move = createQueueMove({ clock: opts.clock, confirms, connection: () => link.connection(), adminChannel: () => link.adminChannel(), unavailable: (cause) => link.unavailable(cause) });

  return {
    start: () => link.start(),
    ...queues,

    publish(queue, message: WireMessage, o = {}) {
      const options = { persistent: true, mandatory: true, messageId: messageId(message), contentType: 'application/json', headers: wireHeaders(message) };
      return confirms.enqueue(queue, encodeMessage(message), options, '', o.wanted);
    },

    settle: () => confirms.settle(),

    consume: (queue, onDelivery, copts) => consumers.subscribe(queueConsumer(queue, onDelivery, copts)),
    publishEvent: sideChannels.publishEvent,
    subscribeEvents: sideChannels.subscribeEvents,
    move,

    async close() {
      const conn = link.shut(); // nothing reconnects from here on
      await consumers.closeAll();
      await conn?.close().catch(() => {});
      confirms.failAll(new BatonError('runtime-stopped', 'the broker connection was closed before the broker confirmed this message; it may or may not be stored'));
    },
  };
}
