/**
 * The confirm window of the amqplib adapter: every durable publish waits its turn (`waiting`), goes
 * out on the confirm channel while fewer than `maxUnconfirmed` are unconfirmed (`inflight`), and
 * settles on the broker's confirm: stored, refused, or returned as unroutable (mandatory). When the
 * channel goes with its connection, what it had not confirmed (`resend`) goes out again first, in
 * publish order, once the connection is back. `wanted` is asked each time a publish is about to go.
 */
import type amqp from 'amqplib';
import type { ConfirmChannel } from 'amqplib';
import { BatonError, unwantedPublish } from '../../errors.ts';

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

export interface ConfirmWindow {
  /** publishes once the window has room; resolves on the broker's confirm */
  enqueue(queue: string, content: Buffer, options: amqp.Options.Publish, exchange?: string, wanted?: () => string | null): Promise<void>;
  /** sends what waits while there is room (the channel drained, a confirm came) */
  pump(): void;
  /** the broker returned a mandatory publish as unroutable: its confirm refuses it */
  returned(messageId: string): void;
  /** the channel went with its connection: what it had not confirmed is sent again, first */
  dropped(): void;
  /** a channel is back: the unconfirmed go first, in their order, then what waited */
  resume(): void;
  /** resolves once nothing waits and nothing is unconfirmed */
  settle(): Promise<void>;
  /** rejects every publish not yet confirmed (the broker is closing) */
  failAll(err: Error): void;
}

export interface ConfirmWindowDeps {
  maxUnconfirmed: number;
  /** the confirm channel while the connection is up */
  channel(): ConfirmChannel | null;
  /** true once the broker is closed: nothing more is accepted */
  stopped(): boolean;
}

export function createConfirmWindow(deps: ConfirmWindowDeps): ConfirmWindow {
  const waiting: Outgoing[] = []; // not yet handed to the channel
  const inflight = new Set<Outgoing>(); // handed to the channel, not confirmed
  const resend: Outgoing[] = []; // unconfirmed when the channel closed, in publish order
  const returned = new Set<string>();
  const settleWaiters: Array<() => void> = [];

  function pump(): void {
    for (let ch = deps.channel(); ch && waiting.length > 0 && inflight.size < deps.maxUnconfirmed; ch = deps.channel()) {
      const o = waiting.shift()!;
      const unwanted = o.wanted?.();
      if (unwanted) {
        o.reject(unwantedPublish(o.options.messageId ?? '?', unwanted, o.sent === true));
        continue;
      }
      o.sent = true;
      inflight.add(o);
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

  return {
    enqueue(queue, content, options, exchange = '', wanted) {
      if (deps.stopped()) return Promise.reject(new BatonError('runtime-stopped', 'the broker connection is closing; nothing was sent'));
      return new Promise<void>((resolve, reject) => {
        waiting.push({ exchange, queue, content, options, resolve, reject, ...(wanted ? { wanted } : {}) });
        pump();
      });
    },
    pump,
    returned: (messageId) => void returned.add(messageId),
    dropped() {
      for (const o of inflight) resend.push(o);
      inflight.clear();
    },
    resume() {
      waiting.unshift(...resend.splice(0));
      pump();
    },
    settle() {
      return new Promise<void>((resolve) => {
        settleWaiters.push(resolve);
        checkSettled();
      });
    },
    failAll(err) {
      for (const o of [...waiting.splice(0), ...inflight, ...resend.splice(0)]) o.reject(err);
      inflight.clear();
      checkSettled();
    },
  };
}
