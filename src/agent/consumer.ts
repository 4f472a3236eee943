/**
 * The agent's consumer of its queue: it takes the steps of its hold (queue-hold.ts), consuming
 * (deliveries to the lanes) and giving the queue back (what is on the wire finishes, receipts go
 * out, then the consumer and every delivery it still holds go together).
 */
import type { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { Broker, Subscription } from '../ports.ts';
import type { DeviceLanes } from './device-lanes.ts';
import type { Lease } from './lease.ts';
import { transition, type Hold, type HoldEvent, type HoldStep } from './queue-hold.ts';
import type { Receipts } from './receipts.ts';

export interface ConsumerOptions {
  broker: Pick<Broker, 'consume'>;
  queue: string;
  prefetch: number;
  lanes: Pick<DeviceLanes, 'accept' | 'resume' | 'giveBack' | 'stop'>;
  receipts: Pick<Receipts, 'beforeRelease'>;
  lease: Pick<Lease, 'current' | 'epoch'>;
  log: Logger;
  /** where `releasing` and `released` {why} go */
  events: EventEmitter;
}

export class QueueConsumer {
  private hold: Hold = { mode: 'released' };
  /** the end of `stop()` (what is on the wire finished, the queue given back), once it was called */
  private stopping: Promise<void> | null = null;

  constructor(private readonly o: ConsumerOptions) {}

  get mode(): Hold['mode'] {
    return this.hold.mode;
  }

  /** Attaches the consumer (the agent starts); rejects when it could not. */
  start(): Promise<Subscription> {
    return this.consume();
  }

  /** A lease was granted (the lease holds it already). */
  granted(): void {
    this.send({ type: 'lease.granted' });
  }

  /** Gives the queue back (its lease lapsed, it held messages without one, a device fenced it). */
  giveBack(why: string): void {
    this.send({ type: 'give-back', why });
  }

  /**
   * Resolves once the queue is given back: at once when it is released, else when the release (or
   * the stop) under way ends; false when it ends consuming again (a grant came meanwhile).
   */
  async givenBack(): Promise<boolean> {
    for (;;) {
      const h = this.hold;
      if (h.mode === 'stopped') await this.stopping;
      if (h.mode !== 'releasing') return h.mode !== 'consuming';
      await h.done;
    }
  }

  /** For good: the lanes stop, the consumer goes with its deliveries (or the release under way ends). */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  private async stopNow(): Promise<void> {
    const was = this.hold;
    this.send({ type: 'stop' });
    await this.o.lanes.stop();
    await this.o.receipts.beforeRelease();
    if (was.mode === 'consuming') await was.sub.then((s) => s.release(), () => {});
    if (was.mode === 'releasing') await was.done;
  }

  /** Takes the step the event means in the current mode; false when it means nothing there. */
  private send(e: HoldEvent): boolean {
    const step = transition(this.hold, e);
    if (!step) return false;
    switch (step.to) {
      case 'stopped':
        this.hold = { mode: 'stopped' };
        break;
      case 'released':
        this.hold = { mode: 'released' };
        break;
      case 'consuming':
        if (step.from === 'released') this.o.log.info({ epoch: this.o.lease.epoch }, 'lease granted again: consuming');
        else this.o.log.info({ epoch: this.o.lease.epoch }, 'lease granted while releasing: consuming again');
        this.consume().catch(() => {});
        break;
      case 'releasing':
        if ('why' in step) void this.release(step.why);
        else if (this.hold.mode === 'releasing') this.hold.afterwards = step.afterwards;
    }
    return true;
  }

  private consume(): Promise<Subscription> {
    this.o.lanes.resume();
    const h = { mode: 'consuming' } as Extract<Hold, { mode: 'consuming' }>;
    this.hold = h;
    // deliveries of an older subscription are left alone: that subscription returns them
    h.sub = this.o.broker.consume(this.o.queue, (d) => this.hold === h && this.o.lanes.accept(d), {
      prefetch: this.o.prefetch,
      onLost: () => this.send({ type: 'consumer.lost', of: h }),
    });
    h.sub.catch((err: Error) => {
      if (this.send({ type: 'consumer.failed', of: h })) this.o.log.warn({ err: err.message }, 'could not consume (the broker connection is going); the next grant tries again');
    });
    return h.sub;
  }

  /** what is on the wire finishes, receipts go out, then the consumer and every delivery it holds go together */
  private async release(why: string): Promise<void> {
    const was = this.hold;
    if (was.mode !== 'consuming') return;
    const { sub } = was;
    let finished!: () => void;
    const h: Hold = { mode: 'releasing', done: new Promise((resolve) => (finished = resolve)), afterwards: 'released' };
    this.hold = h;
    this.o.log.warn({ why }, 'giving the queue back: requests on the wire finish first');
    this.o.events.emit('releasing', { why });
    const returned = await this.o.lanes.giveBack();
    await this.o.receipts.beforeRelease();
    await sub.then(
      (s) => s.release(),
      () => {},
    );
    this.o.log.warn({ why, returned }, 'released the queue');
    this.o.events.emit('released', { why });
    finished();
    this.send({ type: 'released', of: h, leased: this.o.lease.current() !== null });
  }
}
