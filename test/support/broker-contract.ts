// The Broker port's contract: every adapter (amqplib on RabbitMQ, in memory) must pass it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker, Delivery, WireMessage } from '../../src/ports.ts';

const m = (seq: number, deviceId = 'd1'): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: { seq } });

/** Reads `n` messages of `q` (acking them), then stops consuming. */
export async function readQueue(broker: Broker, q: string, n: number): Promise<WireMessage[]> {
  const got: WireMessage[] = [];
  if (n === 0) return got;
  let all!: () => void;
  const done = new Promise<void>((resolve) => (all = resolve));
  const sub = await broker.consume(q, (d) => {
    got.push(d.message!);
    d.ack();
    if (got.length === n) all();
  }, { prefetch: 100 });
  await done;
  await sub.cancel();
  return got;
}

export function brokerContract(name: string, open: () => Promise<{ broker: Broker; dispose(): Promise<void> }>) {
  describe(`Broker contract: ${name}`, () => {
    let broker: Broker;
    let dispose: () => Promise<void>;
    beforeEach(async () => {
      ({ broker, dispose } = await open());
      await broker.start();
    });
    afterEach(async () => {
      await broker.close();
      await dispose();
    });

    it('publishes with confirms and delivers a queue in order', async () => {
      const q = await broker.assertAgentQueue('a1');
      await Promise.all(Array.from({ length: 500 }, (_, i) => broker.publish(q, m(i + 1))));
      expect((await broker.queueInfo(q))?.messages).toBe(500);
      const got: number[] = [];
      await new Promise<void>((resolve) => {
        void broker.consume(q, (d) => {
          got.push(d.message!.seq);
          d.ack();
          if (got.length === 500) resolve();
        }, { prefetch: 50 });
      });
      expect(got).toEqual(Array.from({ length: 500 }, (_, i) => i + 1));
    });

    it('moves a queue in order; a move no longer wanted stops: what moved is a prefix, the rest stays in place, in order', async () => {
      const from = await broker.assertAgentQueue('mv-from');
      const to = await broker.assertAgentQueue('mv-to');
      const read = async (q: string, n: number) => (await readQueue(broker, q, n)).map((w) => w.seq);
      for (let i = 1; i <= 20; i++) await broker.publish(from, m(i));
      expect(await broker.move(from, to)).toBe(20);
      expect(await broker.queueInfo(from)).toMatchObject({ messages: 0 });
      for (let i = 21; i <= 40; i++) await broker.publish(from, m(i));
      let asked = 0;
      await expect(broker.move(from, to, { wanted: () => (++asked > 5 ? 'this runtime no longer leads' : null) })).rejects.toMatchObject({ code: 'not-leader' });
      const moved = (await broker.queueInfo(to))!.messages - 20;
      expect(moved).toBeLessThanOrEqual(5);
      expect((await broker.queueInfo(from))!.messages).toBe(20 - moved);
      expect(await read(to, 20 + moved)).toEqual(Array.from({ length: 20 + moved }, (_, i) => i + 1));
      expect(await read(from, 20 - moved)).toEqual(Array.from({ length: 20 - moved }, (_, i) => 21 + moved + i));
    });

    it('counts consumers, and a cancelled consumer is gone', async () => {
      const q = await broker.assertAgentQueue('a2');
      expect(await broker.queueInfo(q)).toEqual({ messages: 0, consumers: 0 });
      const sub = await broker.consume(q, () => {}, { prefetch: 1 });
      expect((await broker.queueInfo(q))?.consumers).toBe(1);
      await sub.cancel();
      expect((await broker.queueInfo(q))?.consumers).toBe(0);
    });

    it('answers null for a queue that does not exist', async () => {
      expect(await broker.queueInfo('no.such.queue.' + Math.random())).toBeNull();
    });

    it('settle() resolves once every publish is confirmed', async () => {
      const q = await broker.assertAgentQueue('a3');
      let confirmed = 0;
      for (let i = 1; i <= 200; i++) void broker.publish(q, m(i)).then(() => confirmed++);
      await broker.settle();
      expect(confirmed).toBe(200);
    });

    it('a nacked delivery with requeue comes back', async () => {
      const q = await broker.assertAgentQueue('a4');
      await broker.publish(q, m(1));
      const seen: Delivery[] = [];
      await new Promise<void>((resolve) => {
        void broker.consume(q, (d) => {
          seen.push(d);
          if (seen.length === 1) d.nack(true);
          else {
            d.ack();
            resolve();
          }
        }, { prefetch: 1 });
      });
      expect(seen.map((d) => d.message?.seq)).toEqual([1, 1]);
      expect(seen[1]!.redelivered).toBe(true);
    });

    it('release() gives back every delivery not yet acked as the consumer goes, in their place', async () => {
      const q = await broker.assertAgentQueue('a5');
      for (let i = 1; i <= 5; i++) await broker.publish(q, m(i));
      const got: Delivery[] = [];
      let all!: () => void;
      const five = new Promise<void>((resolve) => (all = resolve));
      let lost = 0;
      const sub = await broker.consume(q, (d) => void (got.push(d) === 5 && all()), { prefetch: 10, onLost: () => lost++ });
      await five;
      got[0]!.ack();
      await sub.release();
      // the broker may see the consumer go a moment later; never the consumer gone with a message missing
      for (let info = await broker.queueInfo(q); ; info = await broker.queueInfo(q)) {
        if (info!.consumers === 0) {
          expect(info!.messages).toBe(4);
          break;
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      const again: number[] = [];
      await new Promise<void>((resolve) => {
        void broker.consume(q, (d) => {
          again.push(d.message!.seq);
          d.ack();
          if (again.length === 4) resolve();
        }, { prefetch: 10 });
      });
      expect(again).toEqual([2, 3, 4, 5]);
      expect(lost).toBe(0); // released on purpose: not lost
    });

    it('carries receipts durably to a subscriber, and heartbeats to every subscriber', async () => {
      const receipts: unknown[] = [];
      const beats: unknown[] = [];
      await broker.publishEvent('receipts', { type: 'applied', agentId: 'a1', marks: [] });
      await new Promise<void>((resolve) => {
        void broker.subscribeEvents('receipts', (p) => void (receipts.push(p), resolve()));
      });
      expect(receipts).toEqual([{ type: 'applied', agentId: 'a1', marks: [] }]);
      let heard!: () => void;
      const got = new Promise<void>((resolve) => (heard = resolve));
      await broker.subscribeEvents('heartbeats', (p) => void (beats.push(p), heard()));
      await broker.publishEvent('heartbeats', { type: 'heartbeat', agentId: 'a1' });
      await got;
      expect(beats[0]).toEqual({ type: 'heartbeat', agentId: 'a1' });
    });
  });
}
