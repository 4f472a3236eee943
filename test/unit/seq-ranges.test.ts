// The range sets under exact delivery accounting: merging, membership, bounds.
import { describe, expect, it } from 'vitest';
import { AppliedLedger } from '../../src/runtime/applied-ledger.ts';
import { SeqRanges } from '../../src/seq-ranges.ts';

describe('SeqRanges', () => {
  it('keeps disjoint runs, merges touching ones and counts only new seqs', () => {
    const r = new SeqRanges();
    expect(r.add(1)).toBe(1);
    expect(r.add(2)).toBe(1);
    expect(r.addRange(5, 7)).toBe(3);
    expect(r.list()).toEqual([{ from: 1, to: 2 }, { from: 5, to: 7 }]);
    expect(r.addRange(2, 6)).toBe(2); // 3 and 4
    expect(r.list()).toEqual([{ from: 1, to: 7 }]);
    expect(r.addRange(10, 12)).toBe(3);
    expect([r.has(9), r.has(10), r.has(7), r.has(0)]).toEqual([false, true, true, false]);
    r.dropBelow(11);
    expect(r.list()).toEqual([{ from: 12, to: 12 }]);
  });
});

describe('AppliedLedger', () => {
  it('counts each seq itself; a contiguous prefix joins the floor; the ranges stay bounded', () => {
    const l = new AppliedLedger({ maxRanges: 2, maxDead: 2 });
    for (const s of [1, 2, 3, 4]) l.dispatched('d', s);
    expect(l.applied('d', 3, 3)).toBe(1);
    expect([l.isApplied('d', 2), l.isApplied('d', 3), l.watermark('d'), l.lag('d')]).toEqual([false, true, 0, 3]);
    l.applied('d', 1, 2);
    expect([l.watermark('d'), l.lag('d')]).toEqual([3, 1]);
    l.deadLettered('d', 4);
    expect([l.isApplied('d', 4), l.isDeadLettered('d', 4), l.watermark('d'), l.lag('d')]).toEqual([false, true, 4, 0]);
    // gaps (abandoned seq blocks) beyond maxRanges: the lowest run is folded into the floor
    l.applied('d', 10, 10);
    l.applied('d', 20, 20);
    l.applied('d', 30, 30);
    expect(l.isApplied('d', 10)).toBe(true);
    expect(l.isApplied('d', 25)).toBe(false);
    // dead letters are remembered for the last maxDead seqs
    l.deadLettered('d', 40);
    l.deadLettered('d', 41);
    expect([l.isDeadLettered('d', 4), l.isDeadLettered('d', 41)]).toEqual([false, true]);
  });

  it('a floor raised at a leader change counts every seq at or below it as settled (the residual imprecision); those above stay outstanding', () => {
    const l = new AppliedLedger();
    l.dispatched('d', 6);
    l.dispatched('d', 1006);
    l.raiseFloor('d', 1005);
    expect([l.isApplied('d', 6), l.isApplied('d', 1006), l.lag('d')]).toEqual([true, false, 1]);
  });
});
