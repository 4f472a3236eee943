// The Store contract's in-memory half (the PostgreSQL half runs in test/int/store.int.test.ts).
import { createMemoryStore } from '../../src/memory-store.ts';
import { storeContract } from '../support/store-contract.ts';

storeContract('in memory (unit)', async () => ({ store: createMemoryStore(), dispose: async () => {} }));
