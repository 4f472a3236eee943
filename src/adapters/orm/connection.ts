/**
 * The ORM store's connection: opening MikroORM (creating the database if asked), the schema's
 * lifecycle (migrate, close), and the query helpers every role part shares, among them the one
 * that runs a leader's statements only while its term holds the leadership row.
 */
import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { Logger } from 'pino';
import { BatonError, redactUrl, termOver } from '../../errors.ts';
import { entities, migrationsList } from './schema.ts';
import type { LeaderTerm, StoreLifecycle } from '../../ports.ts';

export interface OrmStoreOptions {
  databaseUrl: string;
  logger: Logger;
  /** create the database when it does not exist (default true) */
  createDatabase?: boolean;
  poolMax?: number;
}

export type Row = Record<string, unknown>;

/** the leadership row while a term (holder, epoch: the two parameters) holds it unexpired */
export const HELD = 'where id = 1 and holder = ? and epoch = ? and expires_at >= now()';

/** What each role part is built from: plain queries, and the statements a leader makes in its term. */
export interface OrmDb {
  /** one statement on a pooled connection; its rows */
  q(sql: string, params?: unknown[]): Promise<Row[]>;
  /**
   * Runs a leader's statements in one transaction, in its term: the first locks the leadership row
   * while `term` holds it unexpired (a takeover's update waits until this commits), else nothing
   * runs and it rejects with `not-leader`. Returns the rows of the first statement given; when
   * that one changes nothing (a compare-and-set lost) the rest do not run.
   */
  txInTerm(term: LeaderTerm, what: string, statements: Array<[string, unknown[]]>): Promise<Row[]>;
  /** One statement in `term` (see txInTerm): `sql` is a data-modifying statement that becomes a CTE and runs only when the term holds (`held` names the locked row). */
  inTerm(term: LeaderTerm, what: string, sql: string, params: unknown[]): Promise<void>;
}

function unavailable(url: string, cause: unknown): BatonError {
  return new BatonError(
    'database-unavailable',
    `PostgreSQL at ${redactUrl(url)} is not reachable (${(cause as Error)?.message ?? cause}); ` +
      'start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (or check databaseUrl)',
    { url: redactUrl(url) },
    { cause },
  );
}

/** Opens the database (creating it if asked); throws `database-unavailable` when it cannot. */
export async function openOrm(opts: OrmStoreOptions): Promise<MikroORM> {
  try {
    const orm = await MikroORM.init({
      clientUrl: opts.databaseUrl,
      entities,
      extensions: [Migrator],
      migrations: { migrationsList, tableName: 'baton_migrations', transactional: true, snapshot: false },
      discovery: { warnWhenNoEntities: false },
      pool: { min: 0, max: opts.poolMax ?? 8 },
      connect: false,
      debug: false,
      allowGlobalContext: false,
      logger: (m) => opts.logger.debug({ orm: m }, 'orm'),
    });
    if (opts.createDatabase !== false) await orm.schema.ensureDatabase();
    await orm.connect();
    if (!(await orm.isConnected())) throw new Error('connection check failed');
    return orm;
  } catch (err) {
    throw unavailable(opts.databaseUrl, err);
  }
}

/** StoreLifecycle: the migrations (schema.ts, in their order) and closing the pool. */
export function ormLifecycle(orm: MikroORM): StoreLifecycle {
  return {
    async migrate() {
      await orm.getMigrator().up();
    },
    async close() {
      await orm.close(true);
    },
  };
}

/** The query helpers over an open MikroORM. */
export function ormDb(orm: MikroORM): OrmDb {
  const q = (sql: string, params: unknown[] = []) => orm.em.getConnection().execute<Row[]>(sql, params as never[], 'all');
  return {
    q,
    txInTerm: (term, what, statements) =>
      orm.em.fork().transactional(async (em) => {
        const c = em.getConnection();
        const ctx = em.getTransactionContext();
        const held = await c.execute<Row[]>(`select 1 from runtime_leader ${HELD} for share`, [term.holder, term.epoch] as never[], 'all', ctx);
        if (held.length === 0) throw termOver(what, term);
        let first: Row[] = [];
        for (const [i, [sql, params]] of statements.entries()) {
          const rows = await c.execute<Row[]>(sql, params as never[], 'all', ctx);
          if (i === 0) first = rows;
          if (i === 0 && rows.length === 0) return rows; // compare-and-set lost: change nothing
        }
        return first;
      }),
    async inTerm(term, what, sql, params) {
      const rows = await q(
        `with held as (select 1 from runtime_leader ${HELD} for share), done as (${sql})
       select (select count(*) from held)::int as held`,
        [term.holder, term.epoch, ...params],
      );
      if (Number(rows[0]?.held) === 0) throw termOver(what, term);
    },
  };
}
