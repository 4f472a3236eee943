/** IdempotencyStore in memory: baton serve's keys, by key, each with its claim and its answer. */
import { copy, type MemoryDb } from './state.ts';
import type { IdempotencyStore } from '../../../ports.ts';

export function memoryIdempotency(db: MemoryDb): IdempotencyStore {
  const keys = db.idempotency;
  return {
    async claimIdempotencyKey({ key, hash, at, expiresAt }) {
      const had = keys.get(key);
      if (had && had.expiresAt > at) return copy(had);
      keys.set(key, { key, hash, claimedAt: at, expiresAt, answer: null });
      return null;
    },
    async retakeIdempotencyKey({ key, hash, at, expiresAt, staleBefore }) {
      const had = keys.get(key);
      if (!had || had.hash !== hash || had.answer !== null || had.claimedAt >= staleBefore) return false;
      keys.set(key, { ...had, claimedAt: at, expiresAt });
      return true;
    },
    async completeIdempotencyKey(key, claimedAt, answer) {
      const had = keys.get(key);
      if (!had || had.claimedAt !== claimedAt || had.answer !== null) return false;
      had.answer = copy(answer);
      return true;
    },
    async releaseIdempotencyKey(key, claimedAt) {
      const had = keys.get(key);
      if (had && had.claimedAt === claimedAt && had.answer === null) keys.delete(key);
    },
    async purgeIdempotencyKeys(now) {
      let n = 0;
      for (const [k, r] of keys) if (r.expiresAt <= now && keys.delete(k)) n++;
      return n;
    },
  };
}
