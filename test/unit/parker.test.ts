// The parker's group commit: flush() waits for the parks issued before it, not for those that keep
// arriving after (a replay round begins with a flush and must begin under any incoming load).
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { Parker } from '../../src/parker.ts';
import type { WireMessage } from '../../src/ports.ts';

const msg = (seq: number): WireMessage => ({ deviceId: 'd1', seq, epoch: 1, method: 'PUT', path: '/p', body: null });
const tick = () => new Promise((r) => setImmediate(r));

describe('parker', () => {
  it('flush() resolves once the parks issued before it commit, while new parks keep arriving', async () => {
    const commits: Array<{ seqs: number[]; done(): void }> = [];
    const parker = new Parker({ park: (ms) => new Promise<void>((done) => commits.push({ seqs: ms.map((m) => m.seq), done })), findParked: async () => [] }, { batchSize: 10, clock: systemClock });
    let next = 1;
    const parked: number[] = [];
    const park = () => {
      const seq = next++;
      void parker.park(msg(seq)).then(() => parked.push(seq));
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
    const parker = new Parker({ park: async () => { throw new Error('db down'); }, findParked: async () => [] }, { batchSize: 10, clock: systemClock });
    await parker.flush();
    const failed = parker.park(msg(1)).catch((e: Error) => e.message);
    await parker.flush();
    expect(await failed).toMatch(/parking failed \(db down\)/);
  });
});
