/** DeadLetterStore over PostgreSQL: `dead_letters`, one per message (every malformed one, seq 0, kept). */
import type { OrmDb } from './connection.ts';
import type { DeadLetterStore } from '../../ports.ts';

export function ormDeadLetters({ q }: OrmDb): DeadLetterStore {
  return {
    async deadLetter(e) {
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
  };
}
