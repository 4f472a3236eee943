/**
 * A process's broker connection in the wide simulation: the in-memory broker behind the same
 * reconnect behaviour as the amqplib adapter (src/adapters/amqp/broker.ts), so that connection drops and
 * publisher nacks can be injected without touching the product:
 * - while the connection is down, publishes and receipts wait and go out in order once it is back;
 *   `settle()`, `queueInfo()` and `assertAgentQueue()` wait for it; heartbeats and lease grants are
 *   dropped; `move()` fails (the adapter throws `broker-unavailable`);
 * - on reconnect the event subscriptions that were not cancelled are attached again, as the
 *   adapter's `open()` does; a queue consumer is not: it ends with the connection (`onLost`), and
 *   one asked for while the connection was down attaches once it is back;
 * - deliveries taken before the drop can no longer be acked: the broker put them back;
 * - while nacking, publishes and receipts are refused with `broker-rejected` (not stored);
 * - while losing control events, lease grants and release requests vanish on the way.
 * Every answer reaches the process through its gate: a paused process does not move on.
 */
import { BatonError } from '../../errors.ts';
import type { MemoryConnection, MemoryRabbit } from '../../adapters/memory/broker.ts';
import type { Broker, Delivery, EventChannel, PublishOptions, QueueInfo, Subscription, WireMessage } from '../../ports.ts';
import type { Gate, World } from './world.ts';

interface Sub {
  cancelled: boolean;
  inner: Subscription | null;
  /** event subscriptions come back after a reconnect; queue consumers end with their connection */
  reattach: boolean;
  onLost?: () => void;
  attach(c: MemoryConnection): Promise<Subscription>;
}

export class SimBroker implements Broker {
  private conn: MemoryConnection | null = null;
  private down = false;
  private closed = false;
  private nackUntil = -1;
  private loseControlUntil = -1;
  private readonly waiters: Array<() => void> = [];
  private readonly subs = new Set<Sub>();
  private pending = 0;
  private readonly settleWaiters: Array<() => void> = [];
  /** every connection this process opened (the simulation's checker counts their unacked deliveries) */
  readonly connections: MemoryConnection[] = [];

  constructor(
    private readonly rabbit: MemoryRabbit,
    private readonly gate: Gate,
    private readonly world: World,
  ) {}

  /** the answer of a call reaches the process through its gate */
  private through<T>(p: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      p.then(
        (v) => this.gate.run(() => resolve(v)),
        (e) => this.gate.run(() => reject(e)),
      ),
    );
  }

  private async ready(): Promise<MemoryConnection> {
    while (this.down && !this.closed) await new Promise<void>((r) => this.waiters.push(r));
    if (this.closed || !this.conn) throw new BatonError('broker-unavailable', 'the in-memory broker connection is closed');
    return this.conn;
  }

  private open(): void {
    const c = this.rabbit.connect({ schedule: this.gate.run });
    this.connections.push(c);
    void c.start();
    this.conn = c;
  }

  async start(): Promise<void> {
    this.open();
  }

  /** The connection drops; the process reconnects after `reconnectAfterMs` (through its gate). */
  drop(reconnectAfterMs: number): void {
    if (this.closed || this.down) return;
    this.conn?.kill();
    this.down = true;
    for (const s of this.subs) {
      const wasAttached = s.inner !== null;
      s.inner = null;
      if (s.reattach || !wasAttached) continue;
      s.cancelled = true;
      this.subs.delete(s);
      if (s.onLost) this.gate.run(s.onLost);
    }
    this.world.at(this.world.now + reconnectAfterMs, () =>
      this.gate.run(() => {
        if (this.closed) return;
        this.open();
        for (const s of this.subs) if (!s.cancelled) void s.attach(this.conn!).then((inner) => (s.inner = inner), () => {});
        this.down = false;
        for (const w of this.waiters.splice(0)) w();
      }),
    );
  }

  /** Publishes are refused (publisher nack) until `until` (simulated ms). */
  nackUntilTime(until: number): void {
    this.nackUntil = Math.max(this.nackUntil, until);
  }

  /** The process is gone for good. */
  kill(): void {
    this.closed = true;
    this.conn?.kill();
    for (const w of this.waiters.splice(0)) w();
  }

  /** Control events (lease grants, release requests) this process sends are lost until `until` (simulated ms). */
  loseControlUntilTime(until: number): void {
    this.loseControlUntil = Math.max(this.loseControlUntil, until);
  }

  private nacking(): boolean {
    return this.world.now < this.nackUntil;
  }

  private tracked<T>(p: Promise<T>): Promise<T> {
    this.pending++;
    return p.finally(() => {
      if (--this.pending === 0) for (const w of this.settleWaiters.splice(0)) w();
    });
  }

  assertAgentQueue(agentId: string): Promise<string> {
    return this.through(this.ready().then((c) => c.assertAgentQueue(agentId)));
  }

  publish(queue: string, message: WireMessage, o: PublishOptions = {}): Promise<void> {
    if (this.nacking()) return this.through(Promise.reject(new BatonError('broker-rejected', `RabbitMQ refused message ${message.deviceId}:${message.seq} (simulated nack); it was not stored: dispatch it again`)));
    // asked again once the connection is back, as the adapter does before it sends what waited
    return this.through(this.tracked(this.ready().then((c) => c.publish(queue, message, o))));
  }

  settle(): Promise<void> {
    if (this.pending === 0) return this.through(Promise.resolve());
    return this.through(new Promise<void>((r) => this.settleWaiters.push(r)));
  }

  queueInfo(queue: string): Promise<QueueInfo | null> {
    return this.through(this.ready().then((c) => c.queueInfo(queue)));
  }

  private subscribe(attach: (c: MemoryConnection) => Promise<Subscription>, reattach: boolean, onLost?: () => void): Promise<Subscription> {
    const s: Sub = { cancelled: false, inner: null, reattach, attach, ...(onLost ? { onLost } : {}) };
    this.subs.add(s);
    const sub: Subscription = {
      cancel: async () => {
        s.cancelled = true;
        this.subs.delete(s);
        await s.inner?.cancel();
      },
      release: async () => {
        s.cancelled = true;
        this.subs.delete(s);
        await s.inner?.release();
      },
    };
    if (this.down) return this.through(Promise.resolve(sub)); // attached with the connection
    return this.through(
      this.ready()
        .then((c) => attach(c))
        .then((inner) => ((s.inner = inner), sub)),
    );
  }

  consume(queue: string, onDelivery: (d: Delivery) => void, opts: { prefetch: number; onLost?: () => void }): Promise<Subscription> {
    return this.subscribe((c) => c.consume(queue, onDelivery, { prefetch: opts.prefetch }), false, opts.onLost);
  }

  publishEvent(channel: EventChannel, payload: object, opts: { key?: string; ttlMs?: number } = {}): Promise<void> {
    if (channel !== 'receipts') {
      // heartbeats and grants are fire-and-forget: lost while the connection is down
      if (this.down || this.closed || !this.conn) return Promise.resolve();
      if (channel === 'control' && this.world.now < this.loseControlUntil) return Promise.resolve();
      return this.through(this.conn.publishEvent(channel, payload, opts));
    }
    if (this.nacking()) return this.through(Promise.reject(new BatonError('broker-rejected', 'RabbitMQ refused a receipt (simulated nack)')));
    return this.through(this.tracked(this.ready().then((c) => c.publishEvent(channel, payload, opts))));
  }

  subscribeEvents(channel: EventChannel, handler: (payload: unknown) => Promise<void> | void, key?: string): Promise<Subscription> {
    return this.subscribe((c) => c.subscribeEvents(channel, handler, key), true);
  }

  move(from: string, to: string, opts?: PublishOptions): Promise<number> {
    if (this.down || !this.conn) return this.through(Promise.reject(new BatonError('broker-unavailable', 'the broker connection is down (simulated drop); nothing was moved')));
    return this.through(this.conn.move(from, to, opts));
  }

  async close(): Promise<void> {
    this.kill();
  }
}
