/**
 * The amqplib adapter's side channels, apart from the config stream: receipts (a durable queue,
 * confirmed publishes, acked once the handler resolved), heartbeats (a fanout exchange to every
 * runtime) and control messages such as lease grants (a direct exchange, routed by agent). Heartbeats
 * and control messages are fire-and-forget: a lost one is covered by the next. Each heartbeat or
 * control subscription reads an exclusive server-named queue, declared again on each reconnect.
 */
import type amqp from 'amqplib';
import type { Channel, ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import type { Broker, EventChannel } from '../../ports.ts';
import type { topology } from '../../topology.ts';
import type { ConfirmWindow } from './confirm-window.ts';
import { type Consumer, type Consumers, safe } from './consumers.ts';

type Names = ReturnType<typeof topology>;

/** Declares what the side channels publish to (on each new confirm channel). */
export async function declareSideChannels(ch: ConfirmChannel, names: Names): Promise<void> {
  await ch.assertExchange(names.heartbeats, 'fanout', { durable: true });
  await ch.assertExchange(names.control, 'direct', { durable: true });
  await ch.assertQueue(names.receipts, { durable: true });
}

/** An event subscription: the payload parsed as JSON, acked once the handler resolved, requeued when it failed. */
function eventConsumer(channel: EventChannel, queue: string, handler: (payload: unknown) => Promise<void> | void, log: Logger, prepare?: (ch: Channel) => Promise<string>): Consumer {
  return {
    queue,
    ...(prepare ? { prepare } : {}),
    prefetch: 100,
    channel: null,
    tag: null,
    cancelled: false,
    reattach: true,
    onMessage: (msg, ch) => {
      let payload: unknown;
      try {
        payload = JSON.parse(msg.content.toString('utf8'));
      } catch {
        log.warn({ channel }, 'dropped an event that is not JSON');
        safe(() => ch.ack(msg));
        return;
      }
      Promise.resolve()
        .then(() => handler(payload))
        .then(
          () => safe(() => ch.ack(msg)),
          (err) => {
            log.warn({ channel, err: (err as Error).message }, 'event handler failed; the event is requeued');
            safe(() => ch.nack(msg, false, true));
          },
        );
    },
  };
}

export function createSideChannels(deps: {
  names: Names;
  log: Logger;
  confirms: ConfirmWindow;
  consumers: Consumers;
  /** the confirm channel while the connection is up */
  publisher(): ConfirmChannel | null;
}): Pick<Broker, 'publishEvent' | 'subscribeEvents'> {
  const { names, log } = deps;
  return {
    publishEvent(channel, payload, opts = {}) {
      const content = Buffer.from(JSON.stringify(payload));
      if (channel === 'receipts') {
        return deps.confirms.enqueue(names.receipts, content, { persistent: true, mandatory: true, messageId: `receipt:${Date.now()}:${Math.random()}` });
      }
      // heartbeats and lease grants are fire-and-forget: a lost one is covered by the next
      const pub = deps.publisher();
      if (!pub) return Promise.resolve();
      const exchange = channel === 'heartbeats' ? names.heartbeats : names.control;
      const options: amqp.Options.Publish = { persistent: false };
      if (opts.ttlMs !== undefined) options.expiration = String(Math.max(1, Math.round(opts.ttlMs)));
      safe(() => pub.publish(exchange, opts.key ?? '', content, options));
      return Promise.resolve();
    },

    subscribeEvents(channel, handler, key = '') {
      const exchange = channel === 'heartbeats' ? names.heartbeats : channel === 'control' ? names.control : null;
      const prepare = exchange
        ? async (ch: Channel) => {
            const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
            await ch.bindQueue(q.queue, exchange, key);
            return q.queue;
          }
        : undefined;
      return deps.consumers.subscribe(eventConsumer(channel, names.receipts, handler, log, prepare));
    },
  };
}
