/**
 * The Store port in memory: for unit tests and the deterministic simulation; passes the same
 * contract suite as the ORM store. One in-memory database (store/state.ts) and a part per role
 * over it (store/*.ts), as the ORM store has over its connection.
 */
import { memoryDb } from './store/state.ts';
import { memoryLeadership } from './store/leadership.ts';
import { memoryAssignment } from './store/assignment.ts';
import { memoryAgents } from './store/agents.ts';
import { memorySeqs } from './store/seqs.ts';
import { memoryParking } from './store/parking.ts';
import { memoryDelivery } from './store/delivery.ts';
import { memoryDeadLetters } from './store/dead-letters.ts';
import { memoryLines } from './store/lines.ts';
import { memoryAudit } from './store/audit.ts';
import { memoryIdempotency } from './store/idempotency.ts';
import type { Store } from '../../ports.ts';

export interface MemoryStoreOptions {
  /** the database clock (ms), for leadership expiry; the simulation passes its own */
  now?: () => number;
}

export function createMemoryStore(opts: MemoryStoreOptions = {}): Store {
  const db = memoryDb(opts.now ?? (() => Date.now()));
  return {
    async migrate() {},
    async close() {},
    ...memoryLeadership(db),
    ...memoryAssignment(db),
    ...memoryAgents(db),
    ...memorySeqs(db),
    ...memoryParking(db),
    ...memoryDelivery(db),
    ...memoryDeadLetters(db),
    ...memoryLines(db),
    ...memoryAudit(db),
    ...memoryIdempotency(db),
  };
}
