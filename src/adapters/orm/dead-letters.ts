/**
 * DeadLetterStore over PostgreSQL: `dead_letters`, one per message (the unique (device_id, seq)
 * where seq > 0 index: a second refusal of it updates that row and opens it again), every malformed
 * one (seq 0) kept. A resolution is five columns, all null while the dead letter is open.
 */
import type { OrmDb, Row } from './connection.ts';
import type { DeadLetterStore, DeadLetterView } from '../../ports.ts';

type Resolution = NonNullable<DeadLetterView['resolution']>;

const ms = (v: unknown) => new Date(v as string).getTime();

function resolutionOf(r: Row): DeadLetterView['resolution'] {
  if (r.resolution_kind === null || r.resolution_kind === undefined) return null;
  const res: Resolution = { kind: String(r.resolution_kind) as Resolution['kind'], by: String(r.resolution_by), at: ms(r.resolution_at), detail: String(r.resolution_detail) };
  if (r.resolution_seq !== null && r.resolution_seq !== undefined) res.seq = Number(r.resolution_seq);
  return res;
}

const toView = (r: Row): DeadLetterView => ({
  id: Number(r.id),
  deviceId: String(r.device_id),
  seq: Number(r.seq),
  epoch: Number(r.epoch),
  agentId: String(r.agent_id),
  reason: String(r.reason),
  status: r.status === null ? null : Number(r.status),
  response: r.response === null ? null : String(r.response),
  payload: String(r.payload),
  at: ms(r.created_at),
  resolution: resolutionOf(r),
});

export function ormDeadLetters({ q }: OrmDb): DeadLetterStore {
  return {
    async deadLetter(e) {
      await q(
        `insert into dead_letters (device_id, seq, epoch, agent_id, reason, status, response, payload)
         values (?, ?, ?, ?, ?, ?, ?, ?) on conflict (device_id, seq) where seq > 0 do update
           set epoch = excluded.epoch, agent_id = excluded.agent_id, reason = excluded.reason, status = excluded.status,
             response = excluded.response, created_at = now(), resolution_kind = null, resolution_by = null,
             resolution_at = null, resolution_detail = null, resolution_seq = null`,
        [e.deviceId, e.seq, e.epoch, e.agentId, e.reason, e.status, e.response, e.payload],
      );
    },

    async listDeadLetters(f = {}) {
      const filters: Array<[string, unknown[]]> = [];
      if (f.deviceId !== undefined) filters.push(['device_id = ?', [f.deviceId]]);
      // a substring, not a LIKE pattern: `%` and `_` in what the operator typed match themselves
      if (f.reason !== undefined) filters.push(['strpos(lower(reason), lower(?::text)) > 0', [f.reason]]);
      if (f.open) filters.push(['resolution_kind is null', []]);
      const where = filters.length ? `where ${filters.map(([sql]) => sql).join(' and ')}` : '';
      const rows = await q(`select * from dead_letters ${where} order by id desc limit ?`, [...filters.flatMap(([, p]) => p), f.limit ?? 1000]);
      return rows.map(toView);
    },

    async getDeadLetter(id) {
      const rows = await q('select * from dead_letters where id = ?', [id]);
      return rows[0] ? toView(rows[0]) : null;
    },

    async findDeadLetter(deviceId, seq) {
      const rows = await q('select * from dead_letters where device_id = ? and seq = ? order by id desc limit 1', [deviceId, seq]);
      return rows[0] ? toView(rows[0]) : null;
    },

    async resolveDeadLetter(id, r) {
      const rows = await q(
        `update dead_letters set resolution_kind = ?, resolution_by = ?, resolution_at = ?, resolution_detail = ?, resolution_seq = ?
         where id = ? returning id`,
        [r?.kind ?? null, r?.by ?? null, r ? new Date(r.at) : null, r?.detail ?? null, r?.seq ?? null, id],
      );
      return rows.length > 0;
    },
  };
}
