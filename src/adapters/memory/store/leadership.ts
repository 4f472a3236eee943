/** LeadershipStore in memory: the leadership row, by the store's clock. */
import type { MemoryDb } from './state.ts';
import type { LeadershipStore } from '../../../ports.ts';

export function memoryLeadership(db: MemoryDb): LeadershipStore {
  return {
    async acquireLeadership(holder, ttlMs, renew = null, url = null) {
      // the same rule as the SQL statement: only a renewal of the current, unexpired term keeps its epoch
      const t = db.now();
      const cur = db.leader;
      if (!cur || cur.expiresAt < t || (cur.holder === holder && (renew === null || cur.epoch === renew))) {
        const keep = !!cur && cur.expiresAt >= t && cur.holder === holder && cur.epoch === renew;
        const epoch = !cur ? 1 : keep ? cur.epoch : cur.epoch + 1;
        db.leader = { holder, epoch, expiresAt: t + ttlMs, url };
        return { leader: true, holder, epoch, url };
      }
      return { leader: false, holder: cur.holder, epoch: cur.epoch, url: cur.url };
    },
    async releaseLeadership(holder) {
      if (db.leader?.holder === holder) db.leader.expiresAt = db.now() - 1;
    },
  };
}
