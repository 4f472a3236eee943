/** AuditStore over PostgreSQL: the `audit` table, operator actions with rising (bigserial) ids. */
import type { OrmDb, Row } from './connection.ts';
import type { AuditEntry, AuditStore } from '../../ports.ts';

const toEntry = (r: Row): AuditEntry => ({
  id: Number(r.id),
  at: new Date(r.at as string).getTime(),
  action: String(r.action) as AuditEntry['action'],
  target: String(r.target),
  by: String(r.by),
  outcome: String(r.outcome) as AuditEntry['outcome'],
  detail: String(r.detail),
});

export function ormAudit({ q }: OrmDb): AuditStore {
  return {
    async recordAudit(e) {
      const rows = await q(
        'insert into audit ("at", action, target, "by", outcome, detail) values (?, ?, ?, ?, ?, ?) returning *',
        [new Date(e.at), e.action, e.target, e.by, e.outcome, e.detail],
      );
      return toEntry(rows[0]!);
    },

    async listAudit(opts = {}) {
      const rows = opts.target === undefined
        ? await q('select * from audit order by id desc limit ?', [opts.limit ?? 100])
        : await q('select * from audit where target = ? order by id desc limit ?', [opts.target, opts.limit ?? 100]);
      return rows.map(toEntry);
    },
  };
}
