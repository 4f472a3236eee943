// The ManagementApi port's contract: RabbitMQ's management HTTP API and the in-memory fake must both
// pass it. What baton relies on when it fences an old agent and moves its queue by shovel.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Broker, ManagementApi, WireMessage } from '../../src/ports.ts';
import { readQueue } from './broker-contract.ts';

const m = (seq: number): WireMessage => ({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: { seq } });
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface ManagementWorld {
  management: ManagementApi;
  /** a client of the same broker whose connection carries `connectionName` (not started) */
  client(connectionName: string): Broker;
  /** resolves once the management side lists `count` connections named so (the real API lists a new one after a moment) */
  listed(connectionName: string, count: number): Promise<void>;
  dispose(): Promise<void>;
}

/** Polls `check` until it stops throwing (the broker may see a consumer go a moment after the client). */
async function eventually(check: () => Promise<void>, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > until) throw err;
      await sleep(20);
    }
  }
}

export function managementContract(name: string, open: () => Promise<ManagementWorld>) {
  describe(`ManagementApi contract: ${name}`, () => {
    let world: ManagementWorld;
    let clients: Broker[];
    // connection and shovel names of this run alone (the real broker is shared)
    const tag = Math.random().toString(36).slice(2, 8);
    const client = async (connectionName: string) => {
      const b = world.client(connectionName);
      clients.push(b);
      await b.start();
      return b;
    };
    beforeEach(async () => {
      world = await open();
      clients = [];
    });
    afterEach(async () => {
      for (const b of clients) await b.close();
      await world.dispose();
    });

    it('closes every connection of a client name and says how many: its consumer is lost, its deliveries back in the queue; other clients stay', async () => {
      const fencedName = `baton contract ${tag} fenced`;
      const fenced = await client(fencedName);
      await client(fencedName); // a second connection under the same name
      const other = await client(`baton contract ${tag} other`);
      const held = await other.assertAgentQueue('mg-held');
      const kept = await other.assertAgentQueue('mg-kept');
      for (let i = 1; i <= 3; i++) await other.publish(held, m(i));
      let got = 0;
      let three!: () => void;
      const delivered = new Promise<void>((resolve) => (three = resolve));
      let lost!: () => void;
      const gone = new Promise<void>((resolve) => (lost = resolve));
      await fenced.consume(held, () => void (++got === 3 && three()), { prefetch: 10, onLost: lost });
      await delivered;
      let otherLost = 0;
      await other.consume(kept, () => {}, { prefetch: 1, onLost: () => otherLost++ });
      await world.listed(fencedName, 2);

      expect(await world.management.closeConnections(fencedName, 'contract test')).toBe(2);
      await gone;
      await eventually(async () => expect(await other.queueInfo(held)).toEqual({ messages: 3, consumers: 0 }));
      expect(await other.queueInfo(kept)).toEqual({ messages: 0, consumers: 1 });
      expect(otherLost).toBe(0);
    });

    it('closes nothing for a name no client uses, and says 0', async () => {
      await client(`baton contract ${tag} someone`);
      expect(await world.management.closeConnections(`baton contract ${tag} nobody`, 'contract test')).toBe(0);
    });

    it('shovels every message of a queue to another, in order, after what that one holds; resolves once it is done', async () => {
      const b = await client(`baton contract ${tag} shovel`);
      const from = await b.assertAgentQueue('mg-from');
      const to = await b.assertAgentQueue('mg-to');
      await b.publish(to, m(100));
      for (let i = 1; i <= 50; i++) await b.publish(from, m(i));
      await world.management.shovel(`baton-contract-${tag}`, from, to, { pollMs: 20, sleep });
      expect(await b.queueInfo(from)).toEqual({ messages: 0, consumers: 0 });
      expect((await b.queueInfo(to))?.messages).toBe(51);
      const moved = await readQueue(b, to, 51);
      expect(moved.map((w) => w.seq)).toEqual([100, ...Array.from({ length: 50 }, (_, i) => i + 1)]);
      expect(moved[1]).toEqual(m(1)); // the message itself, whole
    });

    it('shovels twice from one queue: the second moves what came after the first, behind it', async () => {
      const b = await client(`baton contract ${tag} twice`);
      const from = await b.assertAgentQueue('mg-again');
      const to = await b.assertAgentQueue('mg-dest');
      for (let i = 1; i <= 10; i++) await b.publish(from, m(i));
      await world.management.shovel(`baton-contract-${tag}-1`, from, to, { pollMs: 20, sleep });
      for (let i = 11; i <= 20; i++) await b.publish(from, m(i));
      await world.management.shovel(`baton-contract-${tag}-2`, from, to, { pollMs: 20, sleep });
      expect((await b.queueInfo(from))?.messages).toBe(0);
      expect((await readQueue(b, to, 20)).map((w) => w.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    });
  });
}
