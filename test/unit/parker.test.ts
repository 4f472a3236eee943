// The parker's group commit: flush() waits for the parks issued before it, not for those that keep
// arriving after (a replay round begins with a flush and must begin under any incoming load).
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { Parker } from '../../src/runtime/parker.ts';
import type { WireMessage } from '../../src/ports.ts';
import type { BatonError } from '../../src/errors.ts';

const msg = (seq: number): WireMessage => ({ deviceId: 'd1', seq, method: 'PUT', path: '/p', body: null });
const tick = () => new Promise((r) => setImmediate(r));
const T = { holder: 'r1', epoch: 1 };

describe('parker', () => {
  it('flush() resolves once the parks issued before it commit, while new parks keep arriving', async () => {
    const commits: Array<{ seqs: number[]; done(): void }> = [];
    const parker = new Parker({ park: (ms) => new Promise<void>((done) => commits.push({ seqs: ms.map((m) => m.seq), done })), resolveParked: async () => [] }, { batchSize: 10, clock: systemClock });
    let next = 1;
    const parked: number[] = [];
    const park = () => {
      const seq = next++;
      void parker.park(msg(seq), T).then(() => parked.push(seq));
    };
    park();
    park();
    await tick();
    let flushed = false;
    void parker.flush().then(() => (flushed = true));
    // a steady stream: every commit finds new parks waiting, so the parker never goes idle
    for (let i = 0; i < 5 && !flushed; i++) {
      park();
      commits.shift()!.done();
      await tick();
    }
    expect(flushed).toBe(true);
    expect(parked).toEqual([1, 2]);
    expect(commits.map((c) => c.seqs)).toEqual([[3]]);
  });

  it('flush() with nothing parked resolves at once, and after failed parks too', async () => {
    const parker = new Parker({ park: async () => { throw new Error('db down'); }, resolveParked: async () => [] }, { batchSize: 10, clock: systemClock });
    await parker.flush();
    const failed = parker.park(msg(1), T).catch((e: Error) => e.message);
    await parker.flush();
    expect(await failed).toMatch(/parking failed \(db down\)/);
  });

  it('stores each message in the leader term it was handed out in: a batch never spans two terms', async () => {
    const batches: Array<{ seqs: number[]; term: number }> = [];
    const parker = new Parker({ park: async (ms, term) => void batches.push({ seqs: ms.map((m) => m.seq), term: term.epoch }), resolveParked: async () => [] }, { batchSize: 10, clock: systemClock });
    const T2 = { holder: 'r1', epoch: 2 };
    await Promise.all([parker.park(msg(1), T), parker.park(msg(2), T), parker.park(msg(3), T2), parker.park(msg(4), T2)]);
    expect(batches).toEqual([{ seqs: [1, 2], term: 1 }, { seqs: [3, 4], term: 2 }]);
  });

  it('a park refused because its term is over is reported not stored, with not-leader, without asking what was stored', async () => {
    const store = createMemoryStore();
    let lookups = 0;
    const parker = new Parker({ park: (ms, term) => store.park(ms, term), resolveParked: async (k) => (lookups++, store.resolveParked(k)) }, { batchSize: 10, clock: systemClock });
    await expect(parker.park(msg(1), T)).rejects.toMatchObject({ code: 'not-leader' });
    expect(lookups).toBe(0);
    expect(await store.countParked()).toBe(0);
  });

  it('a park whose answer was lost, its row replayed (sent and deleted) meanwhile, is reported unknown, not "not stored"', async () => {
    const store = createMemoryStore();
    const lead = await store.acquireLeadership('r1', 60_000, null);
    const term = { holder: 'r1', epoch: lead!.epoch };
    let fail: (() => void) | null = null;
    // the INSERT commits, but its answer is lost only later (a hung connection past its deadline)
    const lost = { park: async (ms: WireMessage[], t: typeof T) => (await store.park(ms, t), new Promise<void>((_, reject) => void (fail = () => reject(new Error('no answer'))))), resolveParked: (k: Array<{ deviceId: string; seq: number }>) => store.resolveParked(k) };
    const parker = new Parker(lost, { batchSize: 10, clock: systemClock });
    const failed = parker.park(msg(1), term).catch((e: BatonError) => e);
    await tick();
    // a line's release replays the device's parked rows meanwhile: the row is sent, then deleted
    parker.replaying(['d1']);
    await store.deleteParked((await store.fetchParked(10, { deviceId: 'd1' })).map((r) => r.id));
    fail!();
    expect(await failed).toMatchObject({ code: 'database-unavailable', details: { outcome: 'unknown' } });
  });
});
