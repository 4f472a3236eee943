/** The leader's advertised base URL (a migration of its own file: schema.ts is full). */
import { Migration } from '@mikro-orm/migrations';

/**
 * `runtime_leader.url`: the base URL of the leading runtime's `baton serve` (option `advertise`),
 * written with each take and renewal of the row, so that a standby can send clients there. Numbered
 * 0007: baton serve's idempotency keys are 0006 (branch serve-core).
 */
export class Migration0007LeaderUrl extends Migration {
  override async up(): Promise<void> {
    this.addSql('alter table runtime_leader add column url text null');
  }

  override async down(): Promise<void> {
    this.addSql('alter table runtime_leader drop column if exists url');
  }
}
