/**
 * The Broker port in memory, for unit tests and the deterministic simulation: one in-process
 * "RabbitMQ" (`MemoryRabbit`) and a connection per client. It keeps the semantics baton relies on:
 * per-queue FIFO, prefetch, manual acks, unacked messages back at their place when a connection
 * dies, consumer counts, durable receipts, fanout heartbeats, direct control messages, and the
 * adapter's reconnect (`reconnect()`: event subscriptions come back, queue consumers do not), and
 * named connections (what the management fake closes). Passes the amqplib adapter's contract suite.
 */
import { BatonError, unwantedMove, unwantedPublish } from '../../errors.ts';
import type { Broker, Delivery, EventChannel, PublishOptions, QueueInfo, Subscription, WireMessage } from '../../ports.ts';
import { decodeMessage, encodeMessage } from '../../wire.ts';

interface Msg {
  order: number;
  body: Buffer;
  redelivered: boolean;
}

interface Consumer {
  conn: MemoryConnection;
  prefetch: number;
  unacked: Set<Msg>;
  deliver(m: Msg, ack: () => void, nack: (requeue: boolean) => void): void;
  active: boolean;
}

interface Queue {
  ready: Msg[];
  consumers: Consumer[];
  next: number;
}

/** Runs a callback later, in a deterministic order (microtasks by default; the simulation passes its gates). */
export type Schedule = (fn: () => void) => void;

export class MemoryRabbit {
  readonly queues = new Map<string, Queue>();
  private order = 0;
  private pumping = false;
  readonly heartbeatSubs = new Set<{ conn: MemoryConnection; fn: (p: unknown) => void }>();
  readonly controlSubs = new Set<{ conn: MemoryConnection; key: string; fn: (p: unknown) => void }>();
  /** the open connections (what the management API lists) */
  readonly connections = new Set<MemoryConnection>();

  constructor(readonly namespace = 'baton') {}

  queue(name: string): Queue {
    let q = this.queues.get(name);
    if (!q) this.queues.set(name, (q = { ready: [], consumers: [], next: 0 }));
    return q;
  }

  enqueue(name: string, body: Buffer): void {
    const q = this.queues.get(name);
    if (!q) throw new BatonError('broker-rejected', `queue ${name} does not exist; the message was not stored`, { queue: name });
    q.ready.push({ order: this.order++, body, redelivered: false });
    this.pump();
  }

  /** Puts messages back in their original place (a consumer went away, or nacked with requeue). */
  requeue(name: string, msgs: Msg[]): void {
    const q = this.queue(name);
    for (const m of msgs) m.redelivered = true;
    q.ready.push(...msgs);
    q.ready.sort((a, b) => a.order - b.order);
    this.pump();
  }

  pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    queueMicrotask(() => {
      this.pumping = false;
      for (const [name, q] of this.queues) {
        let progress = true;
        while (q.ready.length > 0 && progress) {
          progress = false;
          for (let i = 0; i < q.consumers.length && q.ready.length > 0; i++) {
            const c = q.consumers[(q.next + i) % q.consumers.length]!;
            if (!c.active || c.unacked.size >= c.prefetch) continue;
            const m = q.ready.shift()!;
            c.unacked.add(m);
            let settled = false;
            c.deliver(
              m,
              () => {
                if (settled || !c.unacked.delete(m)) return;
                settled = true;
                this.pump();
              },
              (requeue) => {
                if (settled || !c.unacked.delete(m)) return;
                settled = true;
                if (requeue) this.requeue(name, [m]);
                else this.pump();
              },
            );
            q.next = (q.next + i + 1) % Math.max(1, q.consumers.length);
            progress = true;
          }
        }
      }
    });
  }

  /** A connection for one client (the runtime, an agent); `name` as the amqplib adapter's `connectionName` (default `baton <namespace>`). */
  connect(opts: { schedule?: Schedule; name?: string } = {}): MemoryConnection {
    return new MemoryConnection(this, opts.schedule ?? queueMicrotask, opts.name ?? `baton ${this.namespace}`);
  }
}

/** A consumer as its connection knows it: event subscriptions (`reattach`) outlive a reconnect, queue consumers do not. */
interface Attached {
  queue: string;
  c: Consumer;
  reattach: boolean;
  onLost?: () => void;
}

export class MemoryConnection implements Broker {
  open = false;
  private readonly consumers = new Set<Attached>();

  constructor(
    readonly rabbit: MemoryRabbit,
    private readonly schedule: Schedule,
    readonly name: string,
  ) {}

  private names = {
    agentQueue: (id: string) => `${this.rabbit.namespace}.agent.${id}`,
    receipts: () => `${this.rabbit.namespace}.receipts`,
  };

  private check(): void {
    if (!this.open) throw new BatonError('broker-unavailable', 'the in-memory broker connection is closed');
  }

  async start(): Promise<void> {
    this.open = true;
    this.rabbit.connections.add(this);
    this.rabbit.queue(this.names.receipts());
  }

  async assertAgentQueue(agentId: string): Promise<string> {
    this.check();
    const name = this.names.agentQueue(agentId);
    this.rabbit.queue(name);
    return name;
  }

  async publish(queue: string, message: WireMessage, o: PublishOptions = {}): Promise<void> {
    this.check();
    const unwanted = o.wanted?.();
    if (unwanted) throw unwantedPublish(`${message.deviceId}:${message.seq}`, unwanted, false);
    this.rabbit.enqueue(queue, encodeMessage(message));
  }

  async settle(): Promise<void> {}

  async queueInfo(queue: string): Promise<QueueInfo | null> {
    this.check();
    const q = this.rabbit.queues.get(queue);
    return q ? { messages: q.ready.length, consumers: q.consumers.length } : null;
  }

  private attach(
    queue: string,
    prefetch: number,
    onBody: (m: Msg, ack: () => void, nack: (requeue: boolean) => void) => void,
    lost: { reattach: true } | { reattach: false; onLost?: () => void },
  ): Subscription {
    this.check();
    const q = this.rabbit.queue(queue);
    // a new Consumer on each attach: an ack from before a reconnect must not settle a redelivery
    const fresh = (): Consumer => ({
      conn: this,
      prefetch,
      unacked: new Set(),
      active: true,
      deliver: (m, ack, nack) => this.schedule(() => onBody(m, ack, nack)),
    });
    const entry: Attached = { queue, c: fresh(), ...lost };
    q.consumers.push(entry.c);
    this.consumers.add(entry);
    this.rabbit.pump();
    return {
      cancel: async () => {
        entry.c.active = false;
        const i = q.consumers.indexOf(entry.c);
        if (i >= 0) q.consumers.splice(i, 1);
      },
      release: async () => {
        if (!this.consumers.delete(entry)) return;
        this.detach(entry);
      },
    };
  }

  /** The consumer goes and its unacked messages go back in place, in one step. */
  private detach({ queue, c }: Attached): void {
    c.active = false;
    const q = this.rabbit.queue(queue);
    const i = q.consumers.indexOf(c);
    if (i >= 0) q.consumers.splice(i, 1);
    this.rabbit.requeue(queue, [...c.unacked]);
    c.unacked.clear();
  }

  async consume(queue: string, onDelivery: (d: Delivery) => void, { prefetch, onLost }: { prefetch: number; onLost?: () => void }): Promise<Subscription> {
    return this.attach(queue, prefetch, (m, ack, nack) => {
      const decoded = decodeMessage(m.body);
      const d: Delivery = { message: 'message' in decoded ? decoded.message : null, raw: m.body, redelivered: m.redelivered, ack, nack };
      if ('malformed' in decoded) d.malformed = decoded.malformed;
      onDelivery(d);
    }, { reattach: false, ...(onLost ? { onLost } : {}) });
  }

  async publishEvent(channel: EventChannel, payload: object, opts: { key?: string; ttlMs?: number } = {}): Promise<void> {
    // receipts are durable publishes, refused on a closed connection (the caller sends them again);
    // heartbeats and grants are fire-and-forget, gone with the connection
    if (channel === 'receipts') this.check();
    else if (!this.open) return;
    const copy = JSON.parse(JSON.stringify(payload)) as unknown;
    if (channel === 'receipts') return this.rabbit.enqueue(this.names.receipts(), Buffer.from(JSON.stringify(copy)));
    const subs = channel === 'heartbeats' ? [...this.rabbit.heartbeatSubs] : [...this.rabbit.controlSubs].filter((s) => s.key === (opts.key ?? ''));
    for (const s of subs) s.fn(copy);
  }

  async subscribeEvents(channel: EventChannel, handler: (payload: unknown) => Promise<void> | void, key = ''): Promise<Subscription> {
    this.check();
    if (channel === 'receipts') {
      return this.attach(this.names.receipts(), 100, (m, ack, nack) => {
        Promise.resolve()
          .then(() => handler(JSON.parse(m.body.toString('utf8'))))
          .then(ack, () => nack(true));
      }, { reattach: true });
    }
    const sub = { conn: this, key, fn: (p: unknown) => this.schedule(() => void handler(p)) };
    const set = (channel === 'heartbeats' ? this.rabbit.heartbeatSubs : this.rabbit.controlSubs) as Set<typeof sub>;
    set.add(sub);
    const cancel = async () => void set.delete(sub);
    return { cancel, release: cancel };
  }

  async move(from: string, to: string, opts: PublishOptions = {}): Promise<number> {
    this.check();
    const src = this.rabbit.queue(from);
    const dst = this.rabbit.queues.get(to);
    if (!dst) throw new BatonError('broker-rejected', `queue ${to} does not exist`);
    let moved = 0;
    while (src.ready.length > 0) {
      const why = opts.wanted?.() ?? null;
      if (why) throw unwantedMove(from, why, moved);
      this.rabbit.enqueue(to, src.ready.shift()!.body);
      moved++;
    }
    return moved;
  }

  /** The connection dies (the process was killed): consumers go, their unacked messages go back in place. */
  kill(): void {
    this.open = false;
    this.rabbit.connections.delete(this);
    for (const entry of this.consumers) this.detach(entry);
    this.consumers.clear();
    for (const s of [...this.rabbit.heartbeatSubs]) if (s.conn === this) this.rabbit.heartbeatSubs.delete(s);
    for (const s of [...this.rabbit.controlSubs]) if (s.conn === this) this.rabbit.controlSubs.delete(s);
  }

  /**
   * The connection drops and the client reconnects at once, as the amqplib adapter does: every
   * consumer goes and its unacked messages go back in place; event subscriptions (receipts,
   * heartbeats, control) are there again, queue consumers are not: `onLost` tells them (through
   * the client's schedule, so a stopped process hears it when it runs again).
   */
  reconnect(): void {
    for (const entry of [...this.consumers]) {
      const wasActive = entry.c.active;
      this.detach(entry);
      if (entry.reattach) {
        if (!wasActive) {
          this.consumers.delete(entry); // cancelled: its channel closes with the connection
          continue;
        }
        entry.c = { ...entry.c, unacked: new Set(), active: true };
        this.rabbit.queue(entry.queue).consumers.push(entry.c);
      } else {
        this.consumers.delete(entry);
        const lost = entry.onLost;
        if (lost && wasActive) this.schedule(lost);
      }
    }
    this.rabbit.pump();
  }

  async close(): Promise<void> {
    this.kill();
  }
}
