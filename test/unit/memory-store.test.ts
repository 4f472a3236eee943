// The Store contract over the in-memory store (the PostgreSQL half runs in test/int/store.int.test.ts).
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { storeContract } from '../support/store-contract.ts';

storeContract('in memory', async () => ({ store: createMemoryStore(), dispose: async () => {} }));
