/**
 * The ManagementApi port in memory, over a `MemoryRabbit`: for unit tests and the simulation.
 * Closing a connection does what RabbitMQ's close does to an amqplib client: the client reconnects
 * at once, its queue consumers are lost (their deliveries back in place, `onLost` said), its event
 * subscriptions come back. A shovel moves what the queue held when it started, in order, behind
 * what the target holds; as RabbitMQ's shovel does, it declares either queue when missing.
 * Passes the same contract suite as the real API (test/support/management-contract.ts).
 */
import type { ManagementApi } from '../../ports.ts';
import type { MemoryRabbit } from './broker.ts';

export function createMemoryManagement(rabbit: MemoryRabbit): ManagementApi {
  return {
    async closeConnections(connectionName) {
      const mine = [...rabbit.connections].filter((c) => c.name === connectionName);
      for (const c of mine) c.reconnect();
      return mine.length;
    },

    async shovel(_name, from, to) {
      const src = rabbit.queue(from);
      rabbit.queue(to);
      for (const m of src.ready.splice(0)) rabbit.enqueue(to, m.body);
    },
  };
}
