/**
 * The Broker port over amqplib: a confirm channel with a bounded window of unconfirmed
 * publishes, mandatory routing, and reconnection with backoff that re-establishes the event
 * subscriptions and republishes, in order, whatever was not confirmed when the connection dropped.
 * A queue consumer is not re-established: it ends with its channel and says so (`onLost`); an agent
 * fenced by closing its connection must not come back to its old queue on its own.
 */
import amqp from 'amqplib';
import { topology } from '../../topology.ts';
import type { Channel, ChannelModel, ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from 'pino';
import { backoff, delay } from '../../clock.ts';
import { BatonError, redactUrl, unwantedMove, unwantedPublish } from '../../errors.ts';
import type { Broker, Clock, Delivery, EventChannel, PublishOptions, QueueInfo, Subscription, WireMessage } from '../../ports.ts';
import { decodeMessage, encodeMessage, messageId, wireHeaders } from '../../wire.ts';

export interface AmqpBrokerOptions {
  url: string;
  /** prefix of every queue and exchange name (default `baton`) */
  namespace: string;
  queueType: 'classic' | 'quorum';
  /** publishes sent but not yet confirmed, at most */
  maxUnconfirmed: number;
  /** connection attempts at `start()` before giving up */
  connectAttempts: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  clock: Clock;
  logger: Logger;
  /** the name the management UI (and fencing) sees; default `baton <namespace>` */
  connectionName?: string;
  /** AMQP heartbeat, seconds: the broker drops a silent (e.g. stopped) client after about twice this */
  heartbeatSec?: number;
  /** the broker blocked publishes for a resource alarm (reason), or lifted the block (null) */
  onBlocked?: (reason: string | null) => void;
}

interface Outgoing {
  exchange: string;
  queue: string;
  content: Buffer;
  options: amqp.Options.Publish;
  wanted?: () => string | null;
  /** handed to a channel once already (then unconfirmed when it closed) */
  sent?: boolean;
  resolve(): void;
  reject(err: Error): void;
}

interface Consumer {
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

/** Names of the queues and exchanges under a namespace. */
export function createAmqpBroker(opts: AmqpBrokerOptions): Broker {
  const log = opts.logger;
  const names = topology(opts.namespace);
  const safeUrl = redactUrl(opts.url);
  let conn: ChannelModel | null = null;
  let pub: ConfirmChannel | null = null;
  let admin: Channel | null = null;
  let closing = false;
  let reconnecting: Promise<void> | null = null;
  const waiting: Outgoing[] = []; // not yet handed to the channel
  const inflight = new Set<Outgoing>(); // handed to the channel, not confirmed
  const resend: Outgoing[] = []; // unconfirmed when the channel closed, in publish order
  const returned = new Set<string>();
  const consumers = new Set<Consumer>();
  const consumerChannels = new Set<Channel>();
  const settleWaiters: Array<() => void> = [];

  function unavailable(cause: unknown): BatonError {
    return new BatonError(
      'broker-unavailable',
      `RabbitMQ at ${safeUrl} is not reachable (${(cause as Error)?.message ?? cause}); ` +
        'start it with `rabbitmq-server -detached` (or check amqpUrl); nothing was sent',
      { url: safeUrl },
      { cause },
    );
  }

  async function open(): Promise<void> {
    const url = new URL(opts.url);
    if (opts.heartbeatSec !== undefined && !url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(opts.heartbeatSec));
    const c = await amqp.connect(url.toString(), { clientProperties: { connection_name: opts.connectionName ?? `baton ${opts.namespace}` } });
    c.on('error', (err) => log.warn({ err: err.message }, 'broker connection error'));
    c.on('close', () => {
      if (conn !== c) return;
      conn = null;
      pub = null;
      admin = null;
      if (!closing) void reconnect();
    });
    c.on('blocked', (reason: string) => {
      log.error({ reason }, 'RabbitMQ blocked publishes (resource alarm): dispatch() waits, nothing is dropped; free memory or disk on the broker');
      opts.onBlocked?.(String(reason));
    });
    c.on('unblocked', () => {
      log.warn('RabbitMQ unblocked publishes: waiting dispatch() calls go on');
      opts.onBlocked?.(null);
    });
    const ch = await c.createConfirmChannel();
    ch.on('error', (err) => log.warn({ err: err.message }, 'publish channel error'));
    ch.on('return', (msg) => {
      if (msg.properties.messageId) returned.add(msg.properties.messageId as string);
    });
    ch.on('drain', pump);
    await ch.assertExchange(names.heartbeats, 'fanout', { durable: true });
    await ch.assertExchange(names.control, 'direct', { durable: true });
    await ch.assertQueue(names.receipts, { durable: true });
    conn = c;
    pub = ch;
    // event subscriptions come back; a queue consumer only if it was asked for while disconnected and
    // never attached (one that was attached ended with its channel: lose() removed it)
    for (const consumer of consumers) if ((consumer.reattach || consumer.channel === null) && !consumer.cancelled) await attach(consumer);
    // what was unconfirmed when the last channel closed goes first, in its order
    waiting.unshift(...resend.splice(0));
    pump();
  }

  async function reconnect(): Promise<void> {
    if (reconnecting) return reconnecting;
    for (const o of inflight) resend.push(o);
    inflight.clear();
    reconnecting = (async () => {
      for (let attempt = 1; !closing; attempt++) {
        const wait = backoff(attempt, opts.reconnectInitialMs, opts.reconnectMaxMs);
        log.warn({ attempt, waitMs: wait, url: safeUrl }, 'broker connection lost; reconnecting');
        await delay(opts.clock, wait);
        try {
          await open();
          log.info({ attempt }, 'broker reconnected');
          return;
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'broker reconnect failed');
        }
      }
    })().finally(() => {
      reconnecting = null;
    });
    return reconnecting;
  }

  function pump(): void {
    while (pub && waiting.length > 0 && inflight.size < opts.maxUnconfirmed) {
      const o = waiting.shift()!;
      const unwanted = o.wanted?.();
      if (unwanted) {
        o.reject(unwantedPublish(o.options.messageId ?? '?', unwanted, o.sent === true));
        continue;
      }
      o.sent = true;
      inflight.add(o);
      const ch = pub;
      const ok = ch.publish(o.exchange, o.queue, o.content, o.options, (err) => confirm(o, err));
      if (!ok) break; // wait for 'drain'
    }
    checkSettled();
  }

  function confirm(o: Outgoing, err: Error | null): void {
    if (!inflight.delete(o)) return;
    const id = o.options.messageId!;
    if (err && err.message === 'channel closed') {
      resend.push(o); // republished after reconnect, in order
      return;
    }
    if (err) {
      o.reject(new BatonError('broker-rejected', `RabbitMQ refused message ${id} (${err.message}); it was not stored: dispatch it again`, { messageId: id }));
    } else if (returned.delete(id)) {
      o.reject(new BatonError('broker-rejected', `queue ${o.queue} does not exist; message ${id} was not stored`, { messageId: id, queue: o.queue }));
    } else {
      o.resolve();
    }
    pump();
  }

  function checkSettled(): void {
    if (inflight.size === 0 && waiting.length === 0 && resend.length === 0) {
      for (const w of settleWaiters.splice(0)) w();
    }
  }

  function enqueue(queue: string, content: Buffer, options: amqp.Options.Publish, exchange = '', wanted?: () => string | null): Promise<void> {
    if (closing) return Promise.reject(new BatonError('runtime-stopped', 'the broker connection is closing; nothing was sent'));
    return new Promise<void>((resolve, reject) => {
      waiting.push({ exchange, queue, content, options, resolve, reject, ...(wanted ? { wanted } : {}) });
      pump();
    });
  }

  async function adminChannel(): Promise<Channel> {
    if (admin) return admin;
    if (!conn) {
      await reconnect();
      if (!conn) throw unavailable('not connected');
    }
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    ch.on('close', () => {
      if (admin === ch) admin = null;
    });
    admin = ch;
    return ch;
  }

  /** A queue consumer's channel closed (or its connection): the consumer is over. */
  function lose(consumer: Consumer): void {
    if (consumer.reattach || consumer.cancelled || closing) return;
    consumer.cancelled = true;
    consumers.delete(consumer);
    consumer.onLost?.();
  }

  async function attach(consumer: Consumer): Promise<void> {
    if (!conn) return; // attached by open() once the connection is back
    const ch = await conn.createChannel();
    consumerChannels.add(ch);
    ch.on('close', () => {
      consumerChannels.delete(ch);
      lose(consumer);
    });
    ch.on('error', (err) => log.warn({ err: err.message, queue: consumer.queue }, 'consumer channel error'));
    await ch.prefetch(consumer.prefetch);
    if (consumer.prepare) consumer.queue = await consumer.prepare(ch);
    const { consumerTag } = await ch.consume(consumer.queue, (msg) => {
      if (msg) consumer.onMessage(msg, ch);
    });
    consumer.channel = ch;
    consumer.tag = consumerTag;
  }

  function subscribe(consumer: Consumer): Promise<Subscription> {
    consumers.add(consumer);
    const subscription: Subscription = {
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
    return attach(consumer).then(
      () => subscription,
      (err: Error) => {
        // the connection dropped while attaching: an event subscription stays registered and is
        // attached again with the connection (open() re-attaches them)
        // (so does a queue consumer that never got a channel: it was asked for as the connection went)
        if ((consumer.reattach || consumer.channel === null) && consumers.has(consumer) && !closing && /Channel ended|Connection closed/.test(err.message)) {
          log.warn({ queue: consumer.queue, err: err.message }, 'connection lost while subscribing; the consumer attaches when it is back');
          return subscription;
        }
        consumers.delete(consumer);
        throw err;
      },
    );
  }

  const safe = (fn: () => void) => {
    try {
      fn();
    } catch {
      // the channel is gone; the broker redelivers the message to the next consumer
    }
  };

  return {
    async start() {
      closing = false;
      let last: unknown;
      for (let attempt = 1; attempt <= opts.connectAttempts; attempt++) {
        try {
          await open();
          return;
        } catch (err) {
          last = err;
          if (attempt < opts.connectAttempts) await delay(opts.clock, backoff(attempt, opts.reconnectInitialMs, opts.reconnectMaxMs));
        }
      }
      throw unavailable(last);
    },

    async assertAgentQueue(agentId) {
      const name = names.agentQueue(agentId);
      const ch = await adminChannel();
      try {
        await ch.assertQueue(name, { durable: true, arguments: { 'x-queue-type': opts.queueType } });
      } catch (err) {
        throw new BatonError(
          'broker-rejected',
          `cannot declare queue ${name} as ${opts.queueType} (${(err as Error).message}); ` +
            'it probably exists with another type: delete it or set queueType to match',
          { queue: name },
        );
      }
      return name;
    },

    publish(queue, message: WireMessage, o = {}) {
      return enqueue(
        queue,
        encodeMessage(message),
        {
          persistent: true,
          mandatory: true,
          messageId: messageId(message),
          contentType: 'application/json',
          headers: wireHeaders(message),
        },
        '',
        o.wanted,
      );
    },

    settle() {
      return new Promise<void>((resolve) => {
        settleWaiters.push(resolve);
        checkSettled();
      });
    },

    async queueInfo(queue): Promise<QueueInfo | null> {
      const ch = await adminChannel();
      try {
        const r = await ch.checkQueue(queue);
        return { messages: r.messageCount, consumers: r.consumerCount };
      } catch (err) {
        if (/404|NOT_FOUND/.test((err as Error).message)) return null;
        throw err;
      }
    },

    consume(queue, onDelivery, { prefetch, onLost }) {
      return subscribe({
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
      });
    },

    publishEvent(channel: EventChannel, payload, opts = {}) {
      const content = Buffer.from(JSON.stringify(payload));
      if (channel === 'receipts') {
        return enqueue(names.receipts, content, { persistent: true, mandatory: true, messageId: `receipt:${Date.now()}:${Math.random()}` });
      }
      // heartbeats and lease grants are fire-and-forget: a lost one is covered by the next
      if (!pub) return Promise.resolve();
      const exchange = channel === 'heartbeats' ? names.heartbeats : names.control;
      const options: amqp.Options.Publish = { persistent: false };
      if (opts.ttlMs !== undefined) options.expiration = String(Math.max(1, Math.round(opts.ttlMs)));
      safe(() => pub!.publish(exchange, opts.key ?? '', content, options));
      return Promise.resolve();
    },

    async subscribeEvents(channel, handler, key = '') {
      const exchange = channel === 'heartbeats' ? names.heartbeats : channel === 'control' ? names.control : null;
      const prepare = exchange
        ? async (ch: Channel) => {
            const q = await ch.assertQueue('', { exclusive: true, autoDelete: true });
            await ch.bindQueue(q.queue, exchange, key);
            return q.queue;
          }
        : undefined;
      return subscribe({
        queue: names.receipts,
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
      });
    },

    async move(from, to, mopts: PublishOptions = {}) {
      // client-side move: consume `from`, republish each message to `to` with a confirm, then ack it
      if (!conn) throw unavailable('not connected');
      const ch = await conn.createChannel();
      ch.on('error', () => {});
      let moved = 0;
      let outstanding = 0;
      let failure: Error | null = null;
      try {
        await ch.prefetch(500);
        const { consumerTag } = await ch.consume(from, (msg) => {
          if (!msg) return;
          // once unwanted, this and every later delivery go back in place (a requeue keeps its position)
          const why = failure ? 'stopped' : (mopts.wanted?.() ?? null);
          if (why) {
            failure ??= unwantedMove(from, why, moved);
            safe(() => ch.nack(msg, false, true));
            return;
          }
          outstanding++;
          const { messageId, headers, contentType, deliveryMode } = msg.properties;
          // asked again as it goes out (after a pause or a reconnect it may no longer be wanted)
          enqueue(to, msg.content, { messageId, headers, contentType, persistent: deliveryMode === 2, mandatory: true }, '', mopts.wanted).then(
            () => {
              safe(() => ch.ack(msg));
              moved++;
              outstanding--;
            },
            (err: Error) => {
              failure ??= err;
              outstanding--;
            },
          );
        });
        const admin = await adminChannel();
        for (;;) {
          if (failure) break;
          const { messageCount } = await admin.checkQueue(from);
          if (messageCount === 0 && outstanding === 0) break;
          await delay(opts.clock, 20);
        }
        await ch.cancel(consumerTag);
        // every republish under way is finished first, failed ones too (and the others acked): closing
        // the channel with one confirmed but unacked would put it back in `from`, a copy behind the gap
        while (outstanding > 0) await delay(opts.clock, 5);
        if (failure) throw failure;
        return moved;
      } finally {
        await ch.close().catch(() => {});
      }
    },

    async close() {
      closing = true;
      consumers.clear();
      for (const ch of [...consumerChannels]) await ch.close().catch(() => {});
      const c = conn;
      conn = null;
      await c?.close().catch(() => {});
      const err = new BatonError('runtime-stopped', 'the broker connection was closed before the broker confirmed this message; it may or may not be stored');
      for (const o of [...waiting.splice(0), ...inflight, ...resend.splice(0)]) o.reject(err);
      inflight.clear();
      checkSettled();
    },
  };
}
