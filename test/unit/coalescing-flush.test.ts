// The coalescing flush (src/coalescing-flush.ts): merge per key, flush on a timer of the Clock
// port, put back what failed, chunks, `written()`, `drain()` and `stop()`. Time is a World's clock.
import { describe, expect, it } from 'vitest';
import { CoalescingFlush, type CoalescingFlushOptions } from '../../src/coalescing-flush.ts';
import { SeqRanges, type SeqRange } from '../../src/seq-ranges.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';

/** the highest number per key (the runtime's watermarks) */
function marks(o: Partial<CoalescingFlushOptions<string, number, number>> = {}) {
  const world = new World(1);
  const writes: Array<Array<[string, number]>> = [];
  let failing = 0;
  const errors: string[] = [];
  const f = new CoalescingFlush<string, number, number>({
    clock: world.clock(new Gate('t')),
    merge: (a, b) => Math.max(a ?? 0, b),
    items: (n) => [n],
    write: async (chunk) => {
      if (failing > 0 && failing--) throw new Error('down');
      writes.push(chunk);
    },
    onError: (err, chunk) => errors.push(`${err.message}:${chunk.length}`),
    ...o,
  });
  const until = (t: number) => (world.at(t, () => {}), world.run(() => false, t));
  return { world, f, writes, errors, until, fail: (n: number) => (failing = n) };
}

describe('coalescing flush', () => {
  it('merges items per key and writes them in one batch on flushNow (no timer without delayMs)', async () => {
    const t = marks();
    t.f.add('d1', 3);
    t.f.add('d2', 1);
    t.f.add('d1', 2);
    t.f.add('d1', 5);
    expect(t.f.size).toBe(2);
    await t.until(10_000);
    expect(t.writes).toEqual([]);
    await t.f.flushNow();
    expect(t.writes).toEqual([
      [
        ['d1', 5],
        ['d2', 1],
      ],
    ]);
    expect(t.f.size).toBe(0);
    await t.f.flushNow(); // nothing pending: no write
    expect(t.writes).toHaveLength(1);
  });

  it('with delayMs, the first add arms one flush that many ms later; later adds ride with it', async () => {
    const t = marks({ delayMs: 50 });
    t.f.add('d1', 1);
    await t.until(30);
    t.f.add('d1', 2);
    await t.until(49);
    expect(t.writes).toEqual([]);
    await t.until(50);
    expect(t.writes).toEqual([[['d1', 2]]]);
    t.f.add('d1', 3);
    await t.until(99);
    expect(t.writes).toHaveLength(1);
    await t.until(100);
    expect(t.writes).toEqual([[['d1', 2]], [['d1', 3]]]);
  });

  it('puts a failed batch back, merged with what came meanwhile, and retries after retryMs', async () => {
    const t = marks({ retryMs: 1000 });
    t.f.add('d1', 4);
    t.fail(1);
    await t.f.flushNow();
    expect(t.errors).toEqual(['down:1']);
    expect(t.writes).toEqual([]);
    t.f.add('d1', 2); // lower: the put-back 4 stays
    t.f.add('d2', 7);
    await t.until(999);
    expect(t.writes).toEqual([]);
    await t.until(1000);
    expect(t.writes).toEqual([
      [
        ['d1', 4],
        ['d2', 7],
      ],
    ]);
  });

  it('without retryMs, or once stopped, a failed batch waits for the next flush', async () => {
    const t = marks({ retryMs: 1000 });
    t.f.stop();
    t.f.add('d1', 1);
    t.fail(1);
    await t.f.flushNow();
    await t.until(5000);
    expect(t.writes).toEqual([]);
    await t.f.flushNow();
    expect(t.writes).toEqual([[['d1', 1]]]);
  });

  it('writes chunks of maxItems one after the other; only a failed chunk is put back', async () => {
    const world = new World(1);
    const sent: SeqRange[][] = [];
    let calls = 0;
    const f = new CoalescingFlush<string, SeqRanges, SeqRange>({
      clock: world.clock(new Gate('t')),
      merge: (rs = new SeqRanges(), r) => (rs.addRange(r.from, r.to), rs),
      items: (rs) => rs.list(),
      write: async (chunk) => {
        if (calls++ === 1) throw new Error('down');
        sent.push(chunk.map(([, r]) => r));
      },
      maxItems: 2,
    });
    for (const seq of [1, 2, 4, 6, 8, 10]) f.add('d1', { from: seq, to: seq });
    expect(f.size).toBe(1);
    await f.flushNow();
    // ranges 1-2, 4, 6, 8, 10: chunks [1-2, 4] [6, 8] [10]; the second failed
    expect(sent).toEqual([
      [
        { from: 1, to: 2 },
        { from: 4, to: 4 },
      ],
      [{ from: 10, to: 10 }],
    ]);
    await f.flushNow();
    expect(sent.at(-1)).toEqual([
      { from: 6, to: 6 },
      { from: 8, to: 8 },
    ]);
  });

  it('written() resolves once a flush wrote everything added before it; a failed flush hands its waiters to the next', async () => {
    const t = marks();
    t.f.add('d1', 1);
    let out = false;
    void t.f.written().then(() => (out = true));
    t.fail(1);
    await t.f.flushNow();
    await t.world.settle();
    expect(out).toBe(false);
    await t.f.flushNow();
    await t.world.settle();
    expect(out).toBe(true);
  });

  it('flushes are independent: one hanging in its write does not hold the next; drain() waits for all', async () => {
    const world = new World(1);
    const release: Array<() => void> = [];
    const writes: number[] = [];
    const f = new CoalescingFlush<string, number, number>({
      clock: world.clock(new Gate('t')),
      merge: (a, b) => Math.max(a ?? 0, b),
      items: (n) => [n],
      write: (chunk) => new Promise<void>((resolve) => release.push(() => (writes.push(chunk[0]![1]), resolve()))),
      onWritten: (chunk) => writes.push(-chunk[0]![1]),
    });
    f.add('d1', 1);
    void f.flushNow();
    f.add('d1', 2);
    let drained = false;
    void f.drain().then(() => (drained = true));
    await world.settle();
    expect(release).toHaveLength(2); // both writes under way
    release[1]!();
    await world.settle();
    expect(writes).toEqual([2, -2]);
    expect(drained).toBe(false);
    release[0]!();
    await world.settle();
    expect(writes).toEqual([2, -2, 1, -1]);
    expect(drained).toBe(true);
  });

  it('a flush whose onWritten throws rejects to its caller only: nothing is left unhandled (a host listener that throws must not crash the host)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const { f } = marks({ onWritten: () => { throw new Error('a host listener failed'); } });
      f.add('d1', 3);
      await expect(f.flushNow()).rejects.toThrow('a host listener failed');
      // Node reports an unhandled rejection after the microtasks of the turn: two turns is past it
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
