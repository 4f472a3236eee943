import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createAmqpBroker } from '../../src/adapters/amqp/broker.ts';
import { createManagementApi } from '../../src/adapters/amqp/management-api.ts';
import { systemClock } from '../../src/clock.ts';
import { silentLogger } from '../../src/logger.ts';
import { AMQP_URL, freshNamespace } from '../support/services.ts';
import { brokerContract } from '../support/broker-contract.ts';
import { closeConnections } from '../support/management.ts';
import { managementContract } from '../support/management-contract.ts';
import { MANAGEMENT_URL, management, requireItem } from '../support/preflight.ts';

const make = (namespace: string, url = AMQP_URL, connectAttempts = 3, connectionName?: string) =>
  createAmqpBroker({ url, namespace, queueType: 'classic', maxUnconfirmed: 64, connectAttempts, reconnectInitialMs: 50, reconnectMaxMs: 500, clock: systemClock, logger: silentLogger(), ...(connectionName ? { connectionName } : {}) });

brokerContract('RabbitMQ (amqplib)', async () => {
  const ns = freshNamespace();
  return { broker: make(ns.namespace), dispose: () => ns.drop(['a1', 'a2', 'a3', 'a4', 'a5']) };
});

/** How many connections the management API lists under a client-given name. */
async function listedAs(connectionName: string): Promise<number> {
  const u = new URL(MANAGEMENT_URL);
  const authorization = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  const res = await request(`${u.origin}/api/connections?columns=client_properties`, { headers: { authorization } });
  const all = (await res.body.json()) as Array<{ client_properties?: { connection_name?: string } }>;
  return all.filter((c) => c.client_properties?.connection_name === connectionName).length;
}

managementContract('RabbitMQ management API', async () => {
  await requireItem(management);
  const ns = freshNamespace();
  return {
    management: createManagementApi(MANAGEMENT_URL),
    client: (name) => make(ns.namespace, AMQP_URL, 3, name),
    // the API lists a new connection after its stats interval
    listed: async (name, count) => {
      for (let i = 0; i < 100 && (await listedAs(name)) < count; i++) await new Promise((r) => setTimeout(r, 100));
    },
    dispose: () => ns.drop(['mg-held', 'mg-kept', 'mg-from', 'mg-to', 'mg-again', 'mg-dest']),
  };
});

describe('amqp broker', () => {
  it('fails start() with a message naming the URL (without its password) and how to start RabbitMQ', async () => {
    const b = make('x', 'amqp://guest:s3cret@127.0.0.1:1', 1);
    const err = await b.start().then(() => null, (e: Error & { code?: string }) => e);
    expect(err).toMatchObject({ code: 'broker-unavailable' });
    expect(err!.message).toMatch(/127\.0\.0\.1:1/);
    expect(err!.message).toMatch(/rabbitmq-server -detached/);
    expect(err!.message).not.toMatch(/s3cret/);
  });

  it('declares quorum queues when asked, and says so when a queue exists with another type', async () => {
    const ns = freshNamespace();
    const quorum = createAmqpBroker({ url: AMQP_URL, namespace: ns.namespace, queueType: 'quorum', maxUnconfirmed: 8, connectAttempts: 1, reconnectInitialMs: 50, reconnectMaxMs: 50, clock: systemClock, logger: silentLogger() });
    const classic = make(ns.namespace);
    await quorum.start();
    await classic.start();
    try {
      const q = await quorum.assertAgentQueue('q1');
      await quorum.publish(q, { deviceId: 'd', seq: 1, method: 'PUT', path: '/p', body: null });
      expect((await quorum.queueInfo(q))?.messages).toBe(1);
      await expect(classic.assertAgentQueue('q1')).rejects.toMatchObject({ code: 'broker-rejected', message: expect.stringMatching(/exists with another type/) });
    } finally {
      await quorum.close();
      await classic.close();
      await ns.drop(['q1']);
    }
  });

  it('reconnects after the connection is closed and republishes what was unconfirmed, in order', async () => {
    await requireItem(management);
    const ns = freshNamespace();
    const b = make(ns.namespace);
    await b.start();
    try {
      const q = await b.assertAgentQueue('a1');
      const all: Promise<void>[] = [];
      // the close lands while publishes stream out (a little at a time), so some are unconfirmed
      let closed: Promise<number> | null = null;
      const body = { pad: 'x'.repeat(16 * 1024) };
      for (let i = 1; i <= 2000; i++) {
        all.push(b.publish(q, { deviceId: 'd', seq: i, method: 'PUT', path: '/p', body }));
        if (i === 500) closed = closeConnections(`baton ${ns.namespace}`);
        if (i % 20 === 0) await new Promise((r) => setImmediate(r));
      }
      await closed;
      await Promise.all(all);
      const seqs: number[] = [];
      await new Promise<void>((resolve, reject) => {
        // the reconnect may still be settling: a consume caught by the drop fails, and is asked again
        const consume = (attempt: number): Promise<unknown> =>
          b.consume(q, (d) => {
            seqs.push(d.message!.seq);
            d.ack();
            if (new Set(seqs).size === 2000) resolve();
          }, { prefetch: 500 }).catch((err: Error) => (attempt < 50 && /Channel ended|Connection closed|not reachable/.test(err.message) ? new Promise((r) => setTimeout(r, 100)).then(() => consume(attempt + 1)) : reject(err)));
        void consume(1);
      });
      // every message is there; a republished one may appear twice, never out of order after its first copy
      expect(new Set(seqs).size).toBe(2000);
      const firsts = seqs.filter((s, i) => seqs.indexOf(s) === i);
      expect(firsts).toEqual(Array.from({ length: 2000 }, (_, i) => i + 1));
    } finally {
      await b.close();
      await ns.drop(['a1']);
    }
  });

  it('after a reconnect its event subscriptions are back but a queue consumer is not: its deliveries are back in the queue and onLost says so', async () => {
    await requireItem(management);
    const ns = freshNamespace();
    const b = make(ns.namespace);
    await b.start();
    try {
      const q = await b.assertAgentQueue('a1');
      for (let i = 1; i <= 3; i++) await b.publish(q, { deviceId: 'd', seq: i, method: 'PUT', path: '/p', body: null });
      let got = 0;
      let held!: () => void;
      const three = new Promise<void>((resolve) => (held = resolve));
      let lost!: () => void;
      const gone = new Promise<void>((resolve) => (lost = resolve));
      await b.consume(q, () => void (++got === 3 && held()), { prefetch: 10, onLost: lost });
      await three;
      const beats: unknown[] = [];
      await b.subscribeEvents('heartbeats', (p) => void beats.push(p));
      await closeConnections(`baton ${ns.namespace}`);
      await gone;
      // reconnected once a heartbeat reaches the subscription again
      while (beats.length === 0) {
        await b.publishEvent('heartbeats', { type: 'heartbeat', agentId: 'x' });
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(await b.queueInfo(q)).toEqual({ messages: 3, consumers: 0 });
      expect(got).toBe(3);
    } finally {
      await b.close();
      await ns.drop(['a1']);
    }
  });
});
