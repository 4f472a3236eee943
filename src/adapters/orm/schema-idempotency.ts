/** The table of baton serve's idempotency keys (a migration of its own: schema.ts is full). */
import { Migration } from '@mikro-orm/migrations';

/**
 * `idempotency_keys`: one row per key, its request's hash, the claim (its time, ms, is the claim's
 * token), the expiry (ms) and, once given, the first answer. Times are the server's wall clock in ms
 * (bigint), so a claim's token compares exactly; purging reads the expiry index.
 */
export class Migration0006IdempotencyKeys extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table idempotency_keys (
      idem_key text primary key, hash text not null, claimed_at bigint not null, expires_at bigint not null,
      status integer null, answer text null)`);
    this.addSql('create index idempotency_keys_expires on idempotency_keys (expires_at)');
  }

  override async down(): Promise<void> {
    this.addSql('drop table if exists idempotency_keys');
  }
}
