/**
 * The amqplib adapter's connection and its reconnect, as one state:
 *
 * - `down`: no connection and nobody connecting (before `start()`, or after `start()` gave up);
 *   asking for the admin channel starts a reconnect.
 * - `connecting`: `start()`'s bounded attempts, or the reconnect loop (capped backoff, for as long
 *   as it takes) run; `done` settles with them. A new connection goes `up` before the consumers
 *   attach again, so that they can.
 * - `up`: the connection, its confirm channel (`pub`) and, once asked for, the admin channel
 *   (declares and checks). When the broker drops it: `down`, then at once `connecting` again, and
 *   what the confirm channel had not confirmed is sent again first (`hooks.dropped`). A drop while
 *   the consumers attach again starts a new loop; the one whose attempt failed hands over to it.
 * - `closed`: `close()` was called; nothing reconnects, a connection opened meanwhile is closed.
 *   `start()` leaves it.
 * An attempt whose consumers cannot attach on a connection still up closes that connection and
 * counts as failed.
 */
import amqp from 'amqplib';
import type { Channel, ChannelModel, ConfirmChannel } from 'amqplib';
import type { Logger } from 'pino';
import { backoff, delay } from '../../clock.ts';
import { BatonError, redactUrl } from '../../errors.ts';
import type { Clock } from '../../ports.ts';

type Connecting = { mode: 'connecting'; done: Promise<void> };
type ConnState = { mode: 'down' } | Connecting | { mode: 'up'; conn: ChannelModel; pub: ConfirmChannel; admin: Channel | null } | { mode: 'closed' };

/** How to reach the broker and how hard to try. */
export interface ConnectionOptions {
  url: string;
  /** prefix of every queue and exchange name (default `baton`) */
  namespace: string;
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

export interface ConnectionHooks {
  /** a new confirm channel, before anything is published on it: declare, listen to it */
  ready(pub: ConfirmChannel): Promise<void>;
  /** the connection is up (again): unconfirmed publishes go out first, consumers attach; a throw fails the attempt */
  resume(): Promise<void>;
  /** the connection went: what its confirm channel had not confirmed is to be sent again */
  dropped(): void;
}

/** The connection of one broker client: its state, its attempts, and its admin channel. */
export class AmqpConnection {
  private state: ConnState = { mode: 'down' };
  private readonly log: Logger;
  private readonly safeUrl: string;

  constructor(
    private readonly opts: ConnectionOptions,
    private readonly hooks: ConnectionHooks,
  ) {
    this.log = opts.logger;
    this.safeUrl = redactUrl(opts.url);
  }

  /** read through a call: TypeScript would keep a narrowing of `state` across the awaits that change it */
  private current(): ConnState {
    return this.state;
  }

  private live() {
    const s = this.current();
    return s.mode === 'up' ? s : null;
  }

  /** connects, with `connectAttempts` tries; throws `broker-unavailable` */
  start(): Promise<void> {
    const s = this.current();
    if (s.mode === 'up') return Promise.resolve();
    if (s.mode === 'connecting') return s.done;
    return this.connecting((me) => this.startAttempts(me));
  }

  /** no reconnect from here on; returns the live connection, for the caller to close once its channels are closed */
  shut(): ChannelModel | null {
    const conn = this.live()?.conn ?? null;
    this.state = { mode: 'closed' };
    return conn;
  }

  connection(): ChannelModel | null {
    return this.live()?.conn ?? null;
  }

  publisher(): ConfirmChannel | null {
    return this.live()?.pub ?? null;
  }

  closed(): boolean {
    return this.current().mode === 'closed';
  }

  /** the channel for declares and checks, opened when first needed (reconnecting if the connection is down) */
  async adminChannel(): Promise<Channel> {
    const s = this.current();
    if (s.mode === 'connecting') await s.done.catch(() => {});
    else if (s.mode === 'down') await this.reconnect();
    const up = this.live();
    if (!up) throw this.unavailable('not connected');
    if (up.admin) return up.admin;
    const ch = await up.conn.createChannel();
    ch.on('error', () => {});
    ch.on('close', () => {
      if (up.admin === ch) up.admin = null;
    });
    up.admin = ch;
    return ch;
  }

  /** the `broker-unavailable` error for this broker */
  unavailable(cause: unknown): BatonError {
    return new BatonError(
      'broker-unavailable',
      `RabbitMQ at ${this.safeUrl} is not reachable (${(cause as Error)?.message ?? cause}); ` +
        'start it with `rabbitmq-server -detached` (or check amqpUrl); nothing was sent',
      { url: this.safeUrl },
      { cause },
    );
  }

  private listen(c: ChannelModel): void {
    const { log, opts } = this;
    c.on('error', (err: Error) => log.warn({ err: err.message }, 'broker connection error'));
    c.on('close', () => {
      if (this.live()?.conn !== c) return;
      this.state = { mode: 'down' };
      void this.reconnect();
    });
    c.on('blocked', (reason: string) => {
      log.error({ reason }, 'RabbitMQ blocked publishes (resource alarm): dispatch() waits, nothing is dropped; free memory or disk on the broker');
      opts.onBlocked?.(String(reason));
    });
    c.on('unblocked', () => {
      log.warn('RabbitMQ unblocked publishes: waiting dispatch() calls go on');
      opts.onBlocked?.(null);
    });
  }

  /** One attempt; true once up (false: closed meanwhile, the new connection closed again). */
  private async open(me: Connecting): Promise<boolean> {
    const { opts } = this;
    const url = new URL(opts.url);
    if (opts.heartbeatSec !== undefined && !url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(opts.heartbeatSec));
    const c = await amqp.connect(url.toString(), { clientProperties: { connection_name: opts.connectionName ?? `baton ${opts.namespace}` } });
    this.listen(c);
    let pub: ConfirmChannel;
    try {
      pub = await c.createConfirmChannel();
      pub.on('error', (err: Error) => this.log.warn({ err: err.message }, 'publish channel error'));
      await this.hooks.ready(pub);
    } catch (err) {
      await c.close().catch(() => {}); // half open: nothing else holds it
      throw err;
    }
    if (this.current() !== me) {
      await c.close().catch(() => {});
      return false;
    }
    this.state = { mode: 'up', conn: c, pub, admin: null };
    try {
      await this.hooks.resume();
    } catch (err) {
      // attaching failed on a connection still up: this attempt failed, and its connection goes
      // (one that dropped meanwhile has started a new loop, which this one hands over to)
      if (this.live()?.conn === c) {
        this.state = me;
        await c.close().catch(() => {});
      }
      throw err;
    }
    return true;
  }

  /** Enters `connecting` with `run` as its attempts (the state is set before `run` looks at it). */
  private connecting(run: (me: Connecting) => Promise<void>): Promise<void> {
    const me = { mode: 'connecting' } as Connecting;
    this.state = me;
    me.done = run(me);
    return me.done;
  }

  /** What a superseded attempt waits for: the newer loop that took over, if any. */
  private handedOver(): Promise<void> {
    const s = this.current();
    return s.mode === 'connecting' ? s.done : Promise.resolve();
  }

  private async startAttempts(me: Connecting): Promise<void> {
    const { opts } = this;
    let last: unknown;
    for (let attempt = 1; attempt <= opts.connectAttempts; attempt++) {
      try {
        await this.open(me);
        return;
      } catch (err) {
        last = err;
      }
      if (this.current() !== me) return this.handedOver();
      if (attempt < opts.connectAttempts) await delay(opts.clock, backoff(attempt, opts.reconnectInitialMs, opts.reconnectMaxMs));
    }
    if (this.current() === me) this.state = { mode: 'down' };
    throw this.unavailable(last);
  }

  private async reconnectLoop(me: Connecting): Promise<void> {
    const { opts, log } = this;
    for (let attempt = 1; this.current() === me; attempt++) {
      const wait = backoff(attempt, opts.reconnectInitialMs, opts.reconnectMaxMs);
      log.warn({ attempt, waitMs: wait, url: this.safeUrl }, 'broker connection lost; reconnecting');
      await delay(opts.clock, wait);
      if (this.current() !== me) break;
      try {
        if (await this.open(me)) log.info({ attempt }, 'broker reconnected');
        return;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'broker reconnect failed');
      }
    }
    return this.handedOver();
  }

  private reconnect(): Promise<void> {
    const s = this.current();
    if (s.mode === 'connecting') return s.done;
    if (s.mode !== 'down') return Promise.resolve();
    this.hooks.dropped();
    return this.connecting((me) => this.reconnectLoop(me));
  }
}
