/**
 * DeliveryStore over PostgreSQL: what each device applied (`device_streams`): watermarks that only
 * rise, and the settled ranges above them, replaced only by a record of a higher rev.
 */
import type { OrmDb } from './connection.ts';
import type { DeliveryStore } from '../../ports.ts';

export function ormDelivery({ q, inTerm }: OrmDb): DeliveryStore {
  return {
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

    async deviceStreams() {
      const rows = await q('select * from device_streams order by device_id');
      return rows.map((r) => ({ deviceId: String(r.device_id), nextSeq: Number(r.next_seq), watermark: Number(r.watermark) }));
    },
  };
}
