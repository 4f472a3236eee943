/** LeadershipStore over PostgreSQL: the `runtime_leader` row, taken and renewed by the database clock. */
import type { OrmDb } from './connection.ts';
import type { LeadershipStore } from '../../ports.ts';

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

export function ormLeadership({ q }: OrmDb): LeadershipStore {
  return {
    async acquireLeadership(holder, ttlMs, renew = null, url = null) {
      const rows = await q(
        `insert into runtime_leader (id, holder, epoch, expires_at, url) values (1, ?, 1, now() + make_interval(secs => ?), ?)
         on conflict (id) do update set holder = excluded.holder,
           epoch = runtime_leader.epoch + (case when runtime_leader.holder = excluded.holder
             and runtime_leader.expires_at >= now() and runtime_leader.epoch = ?::bigint then 0 else 1 end),
           expires_at = excluded.expires_at, url = excluded.url
         where runtime_leader.expires_at < now()
           or (runtime_leader.holder = excluded.holder and (?::bigint is null or runtime_leader.epoch = ?::bigint))
         returning holder, epoch, url`,
        [holder, ttlMs / 1000, url, renew, renew, renew],
      );
      if (rows[0]) return { leader: true, holder, epoch: Number(rows[0].epoch), url: text(rows[0].url) };
      const cur = await q('select holder, epoch, url, expires_at > now() as live from runtime_leader where id = 1');
      const live = !!cur[0]?.live;
      return { leader: false, holder: live ? String(cur[0]!.holder) : null, epoch: Number(cur[0]?.epoch ?? 0), url: live ? text(cur[0]!.url) : null };
    },

    async releaseLeadership(holder) {
      await q('update runtime_leader set expires_at = now() where id = 1 and holder = ?', [holder]);
    },
  };
}
