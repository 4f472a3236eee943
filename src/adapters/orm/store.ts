/** The Store port over MikroORM 6 (PostgreSQL): migrations, seq blocks, the assignment, parking. */
import { MikroORM } from '@mikro-orm/postgresql';
import { Migrator } from '@mikro-orm/migrations';
import type { Logger } from 'pino';
import { BatonError, notInTerm, redactUrl, termOver } from '../../errors.ts';
import { entities, migrationsList } from './schema.ts';
import type { AgentRecord, Assignment, DeadLetter, DeviceStream, LeaderTerm, ParkedRow, Phase, Store, SwitchRecord, WireMessage } from '../../ports.ts';

export interface OrmStoreOptions {
  databaseUrl: string;
  logger: Logger;
  /** create the database when it does not exist (default true) */
  createDatabase?: boolean;
  poolMax?: number;
}

type Row = Record<string, unknown>;

/** the leadership row while a term (holder, epoch: the two parameters) holds it unexpired */
const HELD = 'where id = 1 and holder = ? and epoch = ? and expires_at >= now()';

const toAssignment = (r: Row): Assignment => ({
  agentId: String(r.agent_id),
  topic: String(r.topic),
  epoch: Number(r.epoch),
  lock: Number(r.lock) === 1 ? 1 : 0,
  phase: String(r.phase) as Phase,
  switchId: r.switch_id === null ? null : String(r.switch_id),
  previousAgent: r.previous_agent === null ? null : String(r.previous_agent),
});

const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));

function unavailable(url: string, cause: unknown): BatonError {
  return new BatonError(
    'database-unavailable',
    `PostgreSQL at ${redactUrl(url)} is not reachable (${(cause as Error)?.message ?? cause}); ` +
      'start it with `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start` (or check databaseUrl)',
    { url: redactUrl(url) },
    { cause },
  );
}

/** Opens the database (creating it if asked), runs pending migrations, and returns the Store. */
export async function createOrmStore(opts: OrmStoreOptions): Promise<Store> {
  let orm: MikroORM;
  try {
    orm = await MikroORM.init({
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
  } catch (err) {
    throw unavailable(opts.databaseUrl, err);
  }
  const conn = () => orm.em.getConnection();
  const q = (sql: string, params: unknown[] = []) => conn().execute<Row[]>(sql, params as never[], 'all');
  /**
   * Runs a leader's statements in one transaction, in its term: the first locks the leadership row
   * while `term` holds it unexpired (a takeover's update waits until this commits), else nothing
   * runs and it rejects with `not-leader`. Returns the rows of the first statement given; when
   * that one changes nothing (a compare-and-set lost) the rest do not run.
   */
  const txInTerm = (term: LeaderTerm, what: string, statements: Array<[string, unknown[]]>) =>
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
    });
  /** One statement in `term` (see txInTerm): `sql` is a data-modifying statement that becomes a CTE and runs only when the term holds. */
  const inTerm = async (term: LeaderTerm, what: string, sql: string, params: unknown[]) => {
    const rows = await q(
      `with held as (select 1 from runtime_leader ${HELD} for share), done as (${sql})
       select (select count(*) from held)::int as held`,
      [term.holder, term.epoch, ...params],
    );
    if (Number(rows[0]?.held) === 0) throw termOver(what, term);
  };
  const assignmentOf = async (rows: Row[], what: string) => {
    if (!rows[0]) throw new Error(`${what}: no switch is running with that id`);
    return toAssignment(rows[0]);
  };

  return {
    async migrate() {
      await orm.getMigrator().up();
    },

    async reserveSeqs(deviceId, count, term) {
      // one statement: the row to insert exists only while this term holds the leadership unexpired
      // (the complement of acquireLeadership's takeover condition), so a stale leader reserves nothing
      const rows = await q(
        `insert into device_streams (device_id, next_seq, watermark)
         select ?::text, 1 + ?::bigint, 0 from runtime_leader
           where id = 1 and holder = ? and epoch = ? and expires_at >= now()
         on conflict (device_id) do update set next_seq = device_streams.next_seq + excluded.next_seq - 1, updated_at = now()
         returning next_seq`,
        [deviceId, count, term.holder, term.epoch],
      );
      if (!rows[0]) throw notInTerm(deviceId, term);
      return Number(rows[0].next_seq) - count;
    },

    async getAssignment() {
      const rows = await q('select * from agent_service_used where id = 1');
      return rows[0] ? toAssignment(rows[0]) : null;
    },

    async recordFirstAgent(a, term) {
      await inTerm(
        term,
        'no first agent recorded',
        `insert into agent_service_used (id, agent_id, topic, status, host, lock, epoch, phase)
         select 1, ?, ?, 'up', ?, 0, 1, 'normal' where exists (select 1 from held) on conflict (id) do nothing`,
        [a.agentId, a.topic, a.host],
      );
      const rows = await q('select * from agent_service_used where id = 1');
      return toAssignment(rows[0]!);
    },

    async beginSwitch({ expectEpoch, switchId, reason, term }) {
      const rows = await txInTerm(term, 'no switch started', [
        [
          `update agent_service_used set epoch = epoch + 1, lock = 1, phase = 'switching', switch_id = ?,
             previous_agent = agent_id, updated_at = now()
           where id = 1 and epoch = ? and lock = 0 returning *`,
          [switchId, expectEpoch],
        ],
        [
          `insert into switches (id, from_agent, to_agent, epoch, reason, phase)
           select switch_id, previous_agent, null, epoch, ?, 'switching' from agent_service_used where id = 1`,
          [reason],
        ],
      ]);
      return rows[0] ? toAssignment(rows[0]) : null;
    },

    async recordCandidate(switchId, a, term) {
      const rows = await txInTerm(term, 'no candidate recorded', [
        [
          `update agent_service_used set agent_id = ?, topic = ?, host = ?, updated_at = now()
           where id = 1 and switch_id = ? and phase = 'switching' returning *`,
          [a.agentId, a.topic, a.host, switchId],
        ],
        ['update switches set to_agent = ? where id = ?', [a.agentId, switchId]],
      ]);
      return assignmentOf(rows, 'recordCandidate');
    },

    async setPhase(switchId, phase, term, counts = {}) {
      const stamp = phase === 'draining' ? 'draining_at' : 'replaying_at';
      const rows = await txInTerm(term, `the switch was not moved to ${phase}`, [
        [`update agent_service_used set phase = ?, updated_at = now() where id = 1 and switch_id = ? and lock = 1 returning *`, [phase, switchId]],
        [`update switches set phase = ?, ${stamp} = coalesce(${stamp}, now()), moved = coalesce(?, moved) where id = ?`, [phase, counts.moved ?? null, switchId]],
      ]);
      return assignmentOf(rows, 'setPhase');
    },

    async completeSwitch(switchId, replayed, term) {
      const rows = await txInTerm(term, 'the switch was not completed', [
        [`update agent_service_used set phase = 'normal', lock = 0, updated_at = now() where id = 1 and switch_id = ? returning *`, [switchId]],
        [`update switches set phase = 'normal', completed_at = coalesce(completed_at, now()), replayed = ? where id = ?`, [replayed, switchId]],
      ]);
      return assignmentOf(rows, 'completeSwitch');
    },

    async listSwitches(): Promise<SwitchRecord[]> {
      const rows = await q('select * from switches order by started_at, epoch');
      return rows.map((r) => ({
        id: String(r.id),
        fromAgent: r.from_agent === null ? null : String(r.from_agent),
        toAgent: r.to_agent === null ? null : String(r.to_agent),
        epoch: Number(r.epoch),
        reason: String(r.reason),
        phase: String(r.phase) as Phase,
        startedAt: new Date(r.started_at as string),
        drainingAt: date(r.draining_at),
        replayingAt: date(r.replaying_at),
        completedAt: date(r.completed_at),
        moved: Number(r.moved),
        replayed: Number(r.replayed),
      }));
    },

    async acquireLeadership(holder, ttlMs, renew = null) {
      const rows = await q(
        `insert into runtime_leader (id, holder, epoch, expires_at) values (1, ?, 1, now() + make_interval(secs => ?))
         on conflict (id) do update set holder = excluded.holder,
           epoch = runtime_leader.epoch + (case when runtime_leader.holder = excluded.holder
             and runtime_leader.expires_at >= now() and runtime_leader.epoch = ?::bigint then 0 else 1 end),
           expires_at = excluded.expires_at
         where runtime_leader.expires_at < now()
           or (runtime_leader.holder = excluded.holder and (?::bigint is null or runtime_leader.epoch = ?::bigint))
         returning holder, epoch`,
        [holder, ttlMs / 1000, renew, renew, renew],
      );
      if (rows[0]) return { leader: true, holder, epoch: Number(rows[0].epoch) };
      const cur = await q('select holder, epoch, expires_at > now() as live from runtime_leader where id = 1');
      return { leader: false, holder: cur[0]?.live ? String(cur[0].holder) : null, epoch: Number(cur[0]?.epoch ?? 0) };
    },

    async releaseLeadership(holder) {
      await q('update runtime_leader set expires_at = now() where id = 1 and holder = ?', [holder]);
    },

    async upsertAgent(a: AgentRecord) {
      await q(
        `insert into agents (agent_id, topic, host, status, last_heartbeat) values (?, ?, ?, ?, ?)
         on conflict (agent_id) do update set topic = excluded.topic, host = excluded.host,
           status = excluded.status, last_heartbeat = greatest(agents.last_heartbeat, excluded.last_heartbeat)`,
        [a.agentId, a.topic, a.host, a.status, a.lastHeartbeat],
      );
    },

    async listAgents() {
      const rows = await q('select * from agents order by agent_id');
      return rows.map((r) => ({
        agentId: String(r.agent_id),
        topic: String(r.topic),
        host: String(r.host),
        status: r.status === 'up' ? 'up' : 'down',
        lastHeartbeat: new Date(r.last_heartbeat as string),
      }));
    },

    async park(messages: WireMessage[], term) {
      if (messages.length === 0) return;
      const values: unknown[] = [];
      for (const m of messages) values.push(m.deviceId, m.seq, JSON.stringify(m));
      // one multi-row insert keeps id order = the order given, in one statement (atomic)
      await inTerm(
        term,
        'nothing parked: the messages were not stored',
        `insert into message_queues (device_id, seq, epoch, payload)
         select d, s, coalesce((select epoch from agent_service_used where id = 1), 0), p
         from (values ${messages.map((_, i) => `(?::text, ?::bigint, ?::text, ${i})`).join(', ')}) as v(d, s, p, o)
         where exists (select 1 from held) order by o
         on conflict (device_id, seq) do nothing`,
        values,
      );
    },

    async resolveParked(keys) {
      if (keys.length === 0) return [];
      // a refused row for each key not parked (the unique key makes a late park of it do nothing);
      // the keys that got no refused row are the parked ones
      const rows = await q(
        `insert into message_queues (device_id, seq, epoch, payload, refused)
         select d, s, 0, 'null', true from (values ${keys.map(() => '(?::text, ?::bigint)').join(', ')}) as v(d, s)
         on conflict (device_id, seq) do nothing
         returning device_id, seq`,
        keys.flatMap((k) => [k.deviceId, k.seq]),
      );
      const refused = new Set(rows.map((r) => `${String(r.device_id)}:${Number(r.seq)}`));
      const parked = await q(
        `select device_id, seq from message_queues where not refused and (device_id, seq) in (${keys.map(() => '(?, ?)').join(', ')})`,
        keys.flatMap((k) => [k.deviceId, k.seq]),
      );
      return parked.map((r) => ({ deviceId: String(r.device_id), seq: Number(r.seq) })).filter((k) => !refused.has(`${k.deviceId}:${k.seq}`));
    },

    async fetchParked(limit) {
      const rows = await q('select id, payload from message_queues where not refused order by id limit ?', [limit]);
      return rows.map((r): ParkedRow => ({ id: Number(r.id), message: JSON.parse(String(r.payload)) }));
    },

    async deleteParked(ids) {
      if (ids.length === 0) return;
      await q(`delete from message_queues where id in (${ids.map(() => '?').join(', ')})`, ids);
    },

    async countParked() {
      const rows = await q('select count(*)::int as n from message_queues where not refused');
      return Number(rows[0]!.n);
    },

    async advanceWatermarks(marks) {
      if (marks.length === 0) return;
      const values: unknown[] = [];
      for (const m of marks) values.push(m.deviceId, m.seq);
      await q(
        `insert into device_streams (device_id, next_seq, watermark)
         select d, s + 1, s from (values ${marks.map(() => '(?::text, ?::bigint)').join(', ')}) as v(d, s)
         on conflict (device_id) do update
           set watermark = greatest(device_streams.watermark, excluded.watermark), updated_at = now()`,
        values,
      );
    },

    async recordSettled(entries, term, rev) {
      if (entries.length === 0) return;
      const values: unknown[] = [];
      for (const e of entries) values.push(e.deviceId, e.watermark, JSON.stringify(e.ranges), rev);
      await inTerm(
        term,
        'settled seqs not recorded',
        `insert into device_streams (device_id, next_seq, watermark, settled, settled_rev)
         select d, w + 1, w, r, v from (values ${entries.map(() => '(?::text, ?::bigint, ?::text, ?::bigint)').join(', ')}) as v(d, w, r, v)
         where exists (select 1 from held)
         on conflict (device_id) do update
           set watermark = greatest(device_streams.watermark, excluded.watermark),
             settled = case when excluded.settled_rev > device_streams.settled_rev then excluded.settled else device_streams.settled end,
             settled_rev = greatest(device_streams.settled_rev, excluded.settled_rev), updated_at = now()`,
        values,
      );
    },

    async settledRecords() {
      const rows = await q('select device_id, watermark, settled from device_streams order by device_id');
      return rows.map((r) => ({ deviceId: String(r.device_id), watermark: Number(r.watermark), ranges: JSON.parse(String(r.settled)) as Array<[number, number]> }));
    },

    async deviceStreams(): Promise<DeviceStream[]> {
      const rows = await q('select * from device_streams order by device_id');
      return rows.map((r) => ({ deviceId: String(r.device_id), nextSeq: Number(r.next_seq), watermark: Number(r.watermark) }));
    },

    async deadLetter(e: DeadLetter) {
      await q(
        `insert into dead_letters (device_id, seq, epoch, agent_id, reason, status, response, payload)
         values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (device_id, seq) where seq > 0 do nothing`,
        [e.deviceId, e.seq, e.epoch, e.agentId, e.reason, e.status, e.response, e.payload],
      );
    },

    async listDeadLetters() {
      const rows = await q('select * from dead_letters order by id');
      return rows.map((r) => ({
        deviceId: String(r.device_id),
        seq: Number(r.seq),
        epoch: Number(r.epoch),
        agentId: String(r.agent_id),
        reason: String(r.reason),
        status: r.status === null ? null : Number(r.status),
        response: r.response === null ? null : String(r.response),
        payload: String(r.payload),
      }));
    },

    async close() {
      await orm.close(true);
    },
  };
}
