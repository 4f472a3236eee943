// The ManagementApi contract on the in-memory fake (its RabbitMQ half runs in test/int/broker.int.test.ts).
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryManagement } from '../../src/adapters/memory/management.ts';
import { managementContract } from '../support/management-contract.ts';

managementContract('in memory', async () => {
  const rabbit = new MemoryRabbit('t');
  return {
    management: createMemoryManagement(rabbit),
    client: (name) => rabbit.connect({ name }),
    listed: async () => {},
    dispose: async () => {},
  };
});
