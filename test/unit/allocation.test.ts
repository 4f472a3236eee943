import { describe, expect, it } from 'vitest';
import { checkDevice } from '../../src/devices/checker.ts';
import { Parker } from '../../src/runtime/parker.ts';
import { systemClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { SeqAllocator } from '../../src/runtime/seq-allocator.ts';
import type { WireMessage } from '../../src/ports.ts';

describe('SeqAllocator', () => {
  const term = { holder: 'r1', epoch: 1 };
  const take = (alloc: SeqAllocator, d = 'd1') => new Promise<number>((resolve, reject) => alloc.take(d, (err, seq) => (err ? reject(err) : resolve(seq))));

  it('hands out strictly increasing seqs per device, reserving a block per round trip', async () => {
    let next = 1;
    const calls: number[] = [];
    const alloc = new SeqAllocator({ reserveSeqs: async (_d, n) => (calls.push(n), (next += n) - n) }, 3);
    alloc.beginTerm(term);
    const got: number[] = [];
    await new Promise<void>((resolve) => {
      for (let i = 0; i < 7; i++) alloc.take('d1', (err, seq) => (got.push(seq), got.length === 7 && resolve()));
    });
    expect(got).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(calls.length).toBeLessThanOrEqual(3);
  });

  it('fails every waiter when the reservation fails, and recovers later', async () => {
    let fail = true;
    const alloc = new SeqAllocator({ reserveSeqs: async () => { if (fail) throw new Error('db down'); return 10; } }, 5);
    alloc.beginTerm(term);
    const err = await new Promise<Error | null>((r) => alloc.take('d1', (e) => r(e)));
    expect(err?.message).toBe('db down');
    fail = false;
    expect(await new Promise((r) => alloc.take('d1', (_, s) => r(s)))).toBe(10);
  });

  it('blocks die with their term: a new term reserves again, in its own term; outside a term nothing is handed out', async () => {
    let next = 1;
    const asked: Array<{ n: number; epoch: number }> = [];
    const alloc = new SeqAllocator({ reserveSeqs: async (_d, n, t) => (asked.push({ n, epoch: t.epoch }), (next += n) - n) }, 1000);
    await expect(take(alloc)).rejects.toMatchObject({ code: 'not-leader' });
    alloc.beginTerm(term);
    expect([await take(alloc), await take(alloc)]).toEqual([1, 2]);
    alloc.endTerm();
    await expect(take(alloc)).rejects.toMatchObject({ code: 'not-leader' });
    next = 2001; // another leader handed out 1001-2000 meanwhile
    alloc.beginTerm({ holder: 'r1', epoch: 3 });
    expect(await take(alloc)).toBe(2001);
    expect(asked).toEqual([{ n: 1000, epoch: 1 }, { n: 1000, epoch: 3 }]);
  });

  it('a reservation that answers after its term ended is dropped, and its waiters fail with not-leader', async () => {
    const answers: Array<(first: number) => void> = [];
    const alloc = new SeqAllocator({ reserveSeqs: () => new Promise<number>((r) => answers.push(r)) }, 10);
    alloc.beginTerm(term);
    const waiting = take(alloc);
    alloc.endTerm();
    await expect(waiting).rejects.toMatchObject({ code: 'not-leader', message: expect.stringMatching(/term 1 ended/) });
    alloc.beginTerm({ holder: 'r1', epoch: 2 });
    const fresh = take(alloc);
    answers[0]!(1); // the old term's block: ignored
    await Promise.resolve();
    answers[1]!(500); // the new term's
    expect(await fresh).toBe(500);
  });
});

describe('Parker', () => {
  const m = (seq: number): WireMessage => ({ deviceId: 'd', seq, method: 'PUT', path: '/p', body: null });
  const T = { holder: 'r1', epoch: 1 };

  it('groups a burst into few transactions and resolves each park after its commit', async () => {
    const batches: number[][] = [];
    const parker = new Parker({ park: async (ms) => void batches.push(ms.map((x) => x.seq)), resolveParked: async () => [] }, { batchSize: 4, clock: systemClock });
    await Promise.all([1, 2, 3, 4, 5, 6].map((s) => parker.park(m(s), T)));
    expect(batches).toEqual([[1, 2, 3, 4], [5, 6]]);
    expect(parker.committed).toBe(6);
  });

  it('rejects the batch that could not be stored with database-unavailable, saying it was not stored', async () => {
    const parker = new Parker({ park: async () => { throw new Error('gone'); }, resolveParked: async () => [] }, { batchSize: 10, clock: systemClock });
    await expect(parker.park(m(1), T)).rejects.toMatchObject({ code: 'database-unavailable', message: expect.stringMatching(/was not stored: dispatch it again/) });
    await parker.flush();
  });

  it('a park whose COMMIT went through but whose answer was lost is reported stored, after reading the rows back', async () => {
    const store = createMemoryStore();
    let lookups = 0;
    const ambiguous = {
      park: async (ms: WireMessage[]) => {
        await store.park(ms, { holder: 'r1', epoch: (await store.acquireLeadership('r1', 60_000)).epoch });
        throw new Error('connection terminated'); // committed, answer lost
      },
      resolveParked: async (keys: Array<{ deviceId: string; seq: number }>) => {
        if (++lookups === 1) throw new Error('still reconnecting'); // the read-back is retried until it answers
        return store.resolveParked(keys);
      },
    };
    const parker = new Parker(ambiguous, { batchSize: 10, clock: systemClock });
    await expect(Promise.all([parker.park(m(1), T), parker.park(m(2), T)])).resolves.toEqual([undefined, undefined]);
    expect(parker.committed).toBe(2);
    expect(lookups).toBe(2);
    expect(await store.countParked()).toBe(2);
  });

  it('says the outcome is unknown when the database cannot be asked what a failed park stored', async () => {
    const down = { park: async () => { throw new Error('gone'); }, resolveParked: async () => { throw new Error('gone'); } };
    const parker = new Parker(down, { batchSize: 10, clock: systemClock, resolveWithinMs: 100 });
    await expect(parker.park(m(1), T)).rejects.toMatchObject({ code: 'database-unavailable', message: expect.stringMatching(/may or may not be delivered/) });
  });
});

describe('checkDevice', () => {
  it('counts missing, duplicated and out-of-order seqs', () => {
    expect(checkDevice('d', [1, 2, 3], [1, 2, 3]).ok).toBe(true);
    expect(checkDevice('d', [1, 3], [1, 2, 3])).toMatchObject({ missing: 1, ok: false });
    expect(checkDevice('d', [1, 2, 2, 3], [1, 2, 3])).toMatchObject({ duplicates: 1, outOfOrder: 0, ok: false });
    expect(checkDevice('d', [2, 1, 3], [1, 2, 3])).toMatchObject({ outOfOrder: 1, duplicates: 0, ok: false });
  });
});
