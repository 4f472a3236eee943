/** LeadershipStore over PostgreSQL: the `runtime_leader` row, taken and renewed by the database clock. */
import type { OrmDb } from './connection.ts';
import type { LeadershipStore } from '../../ports.ts';

export function ormLeadership({ q }: OrmDb): LeadershipStore {
  return {
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
  };
}
