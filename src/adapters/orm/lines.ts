/**
 * LineStore over PostgreSQL: `device_lines`, each device's standing order (one row per device
 * ordered), written only while the leader's term holds (one statement, see OrmDb.inTerm).
 */
import type { OrmDb, Row } from './connection.ts';
import type { LineStore, StoredLineOrder } from '../../ports.ts';

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

const toStored = (r: Row): StoredLineOrder => {
  const retrySeq = num(r.retry_seq);
  return {
    deviceId: String(r.device_id),
    order: {
      paused: r.paused === true,
      blockedAt: num(r.blocked_at),
      retry: retrySeq === null ? null : { seq: retrySeq, n: Number(r.retry_n) },
      releasedThrough: Number(r.released_through),
    },
    by: String(r.by),
    at: new Date(r.at as string).getTime(),
    note: String(r.note),
  };
};

export function ormLines({ q, inTerm }: OrmDb): LineStore {
  return {
    async lineOrders() {
      const rows = await q('select * from device_lines order by device_id');
      return rows.map(toStored);
    },

    async setLineOrder(s, term) {
      const o = s.order;
      await inTerm(
        term,
        `the order for device ${s.deviceId}'s line was not stored`,
        `insert into device_lines (device_id, paused, blocked_at, retry_seq, retry_n, released_through, "by", "at", note)
         select ?::text, ?::boolean, ?::bigint, ?::bigint, ?::integer, ?::bigint, ?::text, ?::timestamptz, ?::text
         where exists (select 1 from held)
         on conflict (device_id) do update set paused = excluded.paused, blocked_at = excluded.blocked_at,
           retry_seq = excluded.retry_seq, retry_n = excluded.retry_n, released_through = excluded.released_through,
           "by" = excluded."by", "at" = excluded."at", note = excluded.note`,
        [s.deviceId, o.paused, o.blockedAt, o.retry?.seq ?? null, o.retry?.n ?? null, o.releasedThrough, s.by, new Date(s.at), s.note],
      );
    },
  };
}
