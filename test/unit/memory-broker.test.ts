import { describe, expect, it } from 'vitest';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { brokerContract } from '../support/broker-contract.ts';

brokerContract('in memory', async () => ({ broker: new MemoryRabbit('t').connect(), dispose: async () => {} }));

describe('memory broker', () => {
  it('gives a killed connection\'s unacked messages back, in their place', async () => {
    const rabbit = new MemoryRabbit('t');
    const pub = rabbit.connect();
    const agent = rabbit.connect();
    await pub.start();
    await agent.start();
    const q = await pub.assertAgentQueue('a1');
    for (let i = 1; i <= 5; i++) await pub.publish(q, { deviceId: 'd', seq: i, method: 'PUT', path: '/p', body: null });
    const got: number[] = [];
    await agent.consume(q, (d) => void got.push(d.message!.seq), { prefetch: 3 });
    await new Promise((r) => setTimeout(r, 0));
    expect(got).toEqual([1, 2, 3]);
    agent.kill();
    expect(await pub.queueInfo(q)).toEqual({ messages: 5, consumers: 0 });
    const again: number[] = [];
    const other = rabbit.connect();
    await other.start();
    await other.consume(q, (d) => (again.push(d.message!.seq), d.ack()), { prefetch: 10 });
    await new Promise((r) => setTimeout(r, 0));
    expect(again).toEqual([1, 2, 3, 4, 5]);
  });

  it('reconnects like the amqplib adapter: event subscriptions come back, a queue consumer does not (its deliveries are back in the queue, onLost says so)', async () => {
    const rabbit = new MemoryRabbit('t');
    const pub = rabbit.connect();
    const agent = rabbit.connect();
    await pub.start();
    await agent.start();
    const q = await pub.assertAgentQueue('a1');
    for (let i = 1; i <= 3; i++) await pub.publish(q, { deviceId: 'd', seq: i, method: 'PUT', path: '/p', body: null });
    const got: number[] = [];
    let lost = 0;
    await agent.consume(q, (d) => void got.push(d.message!.seq), { prefetch: 10, onLost: () => lost++ });
    const beats: unknown[] = [];
    await agent.subscribeEvents('heartbeats', (p) => void beats.push(p));
    const receipts: unknown[] = [];
    await agent.subscribeEvents('receipts', (p) => void receipts.push(p));
    await new Promise((r) => setTimeout(r, 0));
    expect(got).toEqual([1, 2, 3]);
    agent.reconnect();
    await new Promise((r) => setTimeout(r, 0));
    expect(lost).toBe(1);
    expect(await pub.queueInfo(q)).toEqual({ messages: 3, consumers: 0 });
    expect(got).toEqual([1, 2, 3]);
    await pub.publishEvent('heartbeats', { n: 2 });
    await pub.publishEvent('receipts', { n: 3 });
    await new Promise((r) => setTimeout(r, 0));
    expect(beats).toEqual([{ n: 2 }]);
    expect(receipts).toEqual([{ n: 3 }]);
    expect(await pub.queueInfo('t.receipts')).toEqual({ messages: 0, consumers: 1 });
  });

  it('knows its open connections by name: started ones, not killed ones', async () => {
    const rabbit = new MemoryRabbit('t');
    const runtime = rabbit.connect();
    const agent = rabbit.connect({ name: 'baton agent t a1' });
    expect(rabbit.connections.size).toBe(0);
    await runtime.start();
    await agent.start();
    expect([...rabbit.connections].map((c) => c.name)).toEqual(['baton t', 'baton agent t a1']);
    agent.kill();
    expect([...rabbit.connections]).toEqual([runtime]);
  });
});
