/**
 * IdempotencyStore over PostgreSQL: the `idempotency_keys` table (./schema-idempotency.ts). A claim is
 * one insert that replaces only an expired row, so of two claims at once exactly one wins; a retake,
 * a completion and a release are compare-and-sets on the claim's time.
 */
import type { OrmDb, Row } from './connection.ts';
import type { IdempotencyRecord, IdempotencyStore } from '../../ports.ts';

const toRecord = (r: Row): IdempotencyRecord => ({
  key: String(r.idem_key),
  hash: String(r.hash),
  claimedAt: Number(r.claimed_at),
  expiresAt: Number(r.expires_at),
  answer: r.answer === null ? null : { status: Number(r.status), body: String(r.answer) },
});

export function ormIdempotency({ q }: OrmDb): IdempotencyStore {
  return {
    async claimIdempotencyKey({ key, hash, at, expiresAt }) {
      // twice at most: a row seen by the insert may be purged before it is read
      for (let i = 0; i < 2; i++) {
        const won = await q(
          `insert into idempotency_keys (idem_key, hash, claimed_at, expires_at) values (?, ?, ?, ?)
           on conflict (idem_key) do update set hash = excluded.hash, claimed_at = excluded.claimed_at, expires_at = excluded.expires_at, status = null, answer = null
           where idempotency_keys.expires_at <= excluded.claimed_at
           returning idem_key`,
          [key, hash, at, expiresAt],
        );
        if (won.length > 0) return null;
        const rows = await q('select * from idempotency_keys where idem_key = ?', [key]);
        if (rows[0]) return toRecord(rows[0]);
      }
      return null;
    },

    async retakeIdempotencyKey({ key, hash, at, expiresAt, staleBefore }) {
      const rows = await q(
        'update idempotency_keys set claimed_at = ?, expires_at = ? where idem_key = ? and hash = ? and answer is null and claimed_at < ? returning idem_key',
        [at, expiresAt, key, hash, staleBefore],
      );
      return rows.length > 0;
    },

    async completeIdempotencyKey(key, claimedAt, answer) {
      const rows = await q(
        'update idempotency_keys set status = ?, answer = ? where idem_key = ? and claimed_at = ? and answer is null returning idem_key',
        [answer.status, answer.body, key, claimedAt],
      );
      return rows.length > 0;
    },

    async releaseIdempotencyKey(key, claimedAt) {
      await q('delete from idempotency_keys where idem_key = ? and claimed_at = ? and answer is null', [key, claimedAt]);
    },

    async purgeIdempotencyKeys(now) {
      const rows = await q('delete from idempotency_keys where expires_at <= ? returning idem_key', [now]);
      return rows.length;
    },
  };
}
