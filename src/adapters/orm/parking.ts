/**
 * ParkingStore over PostgreSQL: `message_queues`, parked messages in id order, each with the epoch
 * in force when parked (the assignment's). A park is one multi-row insert in the leader's term;
 * resolving an ambiguous park leaves a refused row for each message not parked, so a late park of
 * it (the unique key) changes nothing.
 */
import type { OrmDb } from './connection.ts';
import type { ParkedFilter, ParkedRow, ParkingStore } from '../../ports.ts';

/** the rows a filter takes, as SQL over `message_queues` (with its parameters) */
function where(f: ParkedFilter | undefined): { sql: string; params: unknown[] } {
  let sql = 'not refused';
  const params: unknown[] = [];
  if (f?.deviceId !== undefined) {
    sql += ' and device_id = ?';
    params.push(f.deviceId);
  }
  if (f?.except?.length) {
    sql += ` and device_id not in (${f.except.map(() => '?').join(', ')})`;
    params.push(...f.except);
  }
  return { sql, params };
}

export function ormParking({ q, inTerm }: OrmDb): ParkingStore {
  return {
    async park(messages, term) {
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

    async fetchParked(limit, filter) {
      const w = where(filter);
      const rows = await q(`select id, payload from message_queues where ${w.sql} order by id limit ?`, [...w.params, limit]);
      return rows.map((r): ParkedRow => ({ id: Number(r.id), message: JSON.parse(String(r.payload)) }));
    },

    async deleteParked(ids) {
      if (ids.length === 0) return;
      await q(`delete from message_queues where id in (${ids.map(() => '?').join(', ')})`, ids);
    },

    async countParked(filter) {
      const w = where(filter);
      const rows = await q(`select count(*)::int as n from message_queues where ${w.sql}`, w.params);
      return Number(rows[0]!.n);
    },

    async countParkedByDevice() {
      const rows = await q('select device_id, count(*)::int as n from message_queues where not refused group by device_id');
      return Object.fromEntries(rows.map((r) => [String(r.device_id), Number(r.n)]));
    },
  };
}
