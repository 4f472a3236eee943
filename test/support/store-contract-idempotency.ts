// The Store contract's part for baton serve's idempotency keys (IdempotencyStore, src/ports.ts):
// store-contract.ts runs it with the others, on every adapter.
import { beforeEach, describe, expect, it } from 'vitest';
import type { IdempotencyStore } from '../../src/ports.ts';

const T0 = 1_800_000_000_000;
const DAY = 86_400_000;
const answer = { status: 202, body: '{"deviceId":"fw1","seq":1}' };

export function idempotencyContract(current: () => IdempotencyStore) {
  describe('IdempotencyStore', () => {
    let store: IdempotencyStore;
    beforeEach(() => void (store = current()));
    const claim = (key: string, hash = 'h1', at = T0) => store.claimIdempotencyKey({ key, hash, at, expiresAt: at + DAY });

    it('claims a new key once: a second claim gets the record, first without and then with its answer', async () => {
      expect(await claim('k1')).toBeNull();
      expect(await claim('k1', 'h2', T0 + 5)).toEqual({ key: 'k1', hash: 'h1', claimedAt: T0, expiresAt: T0 + DAY, answer: null });
      expect(await store.completeIdempotencyKey('k1', T0, answer)).toBe(true);
      expect(await claim('k1', 'h1', T0 + 6)).toEqual({ key: 'k1', hash: 'h1', claimedAt: T0, expiresAt: T0 + DAY, answer });
      // an answer is recorded once
      expect(await store.completeIdempotencyKey('k1', T0, { status: 500, body: 'x' })).toBe(false);
      expect((await claim('k1'))!.answer).toEqual(answer);
      expect(await claim('k2')).toBeNull();
    });

    it('of claims of one key at once, exactly one wins', async () => {
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => claim('race', `h${i}`, T0 + i)));
      expect(results.filter((r) => r === null)).toHaveLength(1);
    });

    it('an expired key counts as unused: claimed again, with the new request', async () => {
      await claim('k1');
      await store.completeIdempotencyKey('k1', T0, answer);
      expect(await claim('k1', 'h2', T0 + DAY)).toBeNull();
      expect(await claim('k1', 'h3', T0 + DAY + 1)).toMatchObject({ hash: 'h2', claimedAt: T0 + DAY, answer: null });
    });

    it('a stale claim of the same hash with no answer is retaken by one caller; a completion of the old claim is then refused', async () => {
      await claim('k1');
      const retake = (hash: string, staleBefore: number, at = T0 + 100) => store.retakeIdempotencyKey({ key: 'k1', hash, at, expiresAt: at + DAY, staleBefore });
      expect(await retake('h1', T0)).toBe(false); // not stale yet
      expect(await retake('h2', T0 + 50)).toBe(false); // another request
      expect(await Promise.all([retake('h1', T0 + 50), retake('h1', T0 + 50)])).toEqual(expect.arrayContaining([true, false]));
      expect(await store.completeIdempotencyKey('k1', T0, answer)).toBe(false);
      expect(await store.completeIdempotencyKey('k1', T0 + 100, answer)).toBe(true);
      expect(await retake('h1', T0 + 1000, T0 + 2000)).toBe(false); // answered: never retaken
    });

    it('a release frees a claim with no answer, only the claim it names', async () => {
      await claim('k1');
      await store.releaseIdempotencyKey('k1', T0 + 1);
      expect(await claim('k1', 'h2', T0 + 2)).toMatchObject({ hash: 'h1' });
      await store.releaseIdempotencyKey('k1', T0);
      expect(await claim('k1', 'h2', T0 + 3)).toBeNull();
      await store.completeIdempotencyKey('k1', T0 + 3, answer);
      await store.releaseIdempotencyKey('k1', T0 + 3);
      expect((await claim('k1', 'h2', T0 + 4))!.answer).toEqual(answer);
    });

    it('purges what expired, and only that', async () => {
      await claim('old', 'h', T0);
      await claim('new', 'h', T0 + 10);
      expect(await store.purgeIdempotencyKeys(T0 + DAY + 5)).toBe(1);
      expect(await claim('new', 'x', T0 + DAY + 6)).toMatchObject({ hash: 'h' });
      expect(await claim('old', 'x', T0 + DAY + 6)).toBeNull();
      expect(await store.purgeIdempotencyKeys(T0)).toBe(0);
    });
  });
}
