/** AuditStore in memory: operator actions with rising ids, read newest first. */
import { copy, type MemoryDb } from './state.ts';
import type { AuditStore } from '../../../ports.ts';

export function memoryAudit(db: MemoryDb): AuditStore {
  return {
    async recordAudit(entry) {
      const e = { id: db.nextAuditId++, ...copy(entry) };
      db.audit.push(e);
      return copy(e);
    },
    async listAudit(opts = {}) {
      const all = [...db.audit].reverse().filter((e) => opts.target === undefined || e.target === opts.target);
      return all.slice(0, opts.limit ?? 100).map(copy);
    },
  };
}
