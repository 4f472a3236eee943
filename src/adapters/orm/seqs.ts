/** SeqStore over PostgreSQL: seq blocks per device (`device_streams.next_seq`), reserved only in a live leader term. */
import { notInTerm } from '../../errors.ts';
import { HELD, type OrmDb } from './connection.ts';
import type { SeqStore } from '../../ports.ts';

export function ormSeqs({ q }: OrmDb): SeqStore {
  return {
    async reserveSeqs(deviceId, count, term) {
      // one statement: the row to insert exists only while this term holds the leadership unexpired
      // (the complement of acquireLeadership's takeover condition), so a stale leader reserves nothing
      const rows = await q(
        `insert into device_streams (device_id, next_seq, watermark)
         select ?::text, 1 + ?::bigint, 0 from runtime_leader
           ${HELD}
         on conflict (device_id) do update set next_seq = device_streams.next_seq + excluded.next_seq - 1, updated_at = now()
         returning next_seq`,
        [deviceId, count, term.holder, term.epoch],
      );
      if (!rows[0]) throw notInTerm(deviceId, term);
      return Number(rows[0].next_seq) - count;
    },
  };
}
