/**
 * The Store port over MikroORM 6 (PostgreSQL): one connection (connection.ts) and a part per role,
 * each in its own file over the shared query helpers.
 */
import { ormDb, ormLifecycle, openOrm, type OrmStoreOptions } from './connection.ts';
import { ormLeadership } from './leadership.ts';
import { ormAssignment } from './assignment.ts';
import { ormAgents } from './agents.ts';
import { ormSeqs } from './seqs.ts';
import { ormParking } from './parking.ts';
import { ormDelivery } from './delivery.ts';
import { ormDeadLetters } from './dead-letters.ts';
import { ormLines } from './lines.ts';
import { ormAudit } from './audit.ts';
import { ormIdempotency } from './idempotency.ts';
import type { Store } from '../../ports.ts';

export type { OrmStoreOptions };

/** Opens the database (creating it if asked) and returns the Store; `migrate()` brings the schema up to date. */
export async function createOrmStore(opts: OrmStoreOptions): Promise<Store> {
  const orm = await openOrm(opts);
  const db = ormDb(orm);
  return {
    ...ormLifecycle(orm),
    ...ormLeadership(db),
    ...ormAssignment(db),
    ...ormAgents(db),
    ...ormSeqs(db),
    ...ormParking(db),
    ...ormDelivery(db),
    ...ormDeadLetters(db),
    ...ormLines(db),
    ...ormAudit(db),
    ...ormIdempotency(db),
  };
}
