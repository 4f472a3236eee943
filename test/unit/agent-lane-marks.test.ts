// A device lane's bookkeeping (src/agent/lane-marks.ts): which seq at or below the watermark is a
// known redelivery (settled here, applied before this epoch) and which is an anomaly.
import { describe, expect, it } from 'vitest';
import { LaneMarks } from '../../src/agent/lane-marks.ts';

describe('lane marks', () => {
  it('a seq above the watermark is to send; one this lane applied is settled here; a gap below the watermark is an anomaly', () => {
    const m = new LaneMarks();
    expect(m.redelivery(1)).toBeNull();
    m.appliedHere(1);
    m.appliedHere(3);
    expect(m.lastApplied).toBe(3);
    expect(m.redelivery(1)).toBe('settled-here');
    expect(m.redelivery(2)).toBe('anomaly');
    expect(m.redelivery(4)).toBeNull();
  });

  it('a seq this lane dead-lettered is settled here also above the watermark (a copy of it is never sent as usual)', () => {
    const m = new LaneMarks();
    m.appliedHere(1);
    m.settle(2); // refused, dead-lettered: the watermark stays at 1
    expect(m.lastApplied).toBe(1);
    expect(m.redelivery(2)).toBe('settled-here');
    expect(m.redelivery(3)).toBeNull();
  });

  it('the grant that brings an epoch not begun here raises the baseline; a renewal of the running epoch only the watermark', () => {
    const m = new LaneMarks();
    m.granted(5, 1);
    expect(m.redelivery(4)).toBe('before-epoch');
    m.beginEpoch(1);
    m.deviceAnswered(5);
    m.granted(9, 1);
    expect(m.lastApplied).toBe(9);
    expect(m.baseline).toBe(5);
    expect(m.redelivery(7)).toBe('anomaly');
    m.granted(9, 2);
    expect(m.redelivery(7)).toBe('before-epoch');
  });

  it('the device answer of a new epoch raises watermark and baseline; a device without one raises neither', () => {
    const m = new LaneMarks();
    m.beginEpoch(1);
    m.deviceAnswered(null);
    expect(m.reportsWatermark).toBe(false);
    expect(m.lastApplied).toBe(0);
    m.beginEpoch(2);
    m.deviceAnswered(8);
    expect(m.epoch).toBe(2);
    expect(m.reportsWatermark).toBe(true);
    expect([m.lastApplied, m.baseline]).toEqual([8, 8]);
    m.settle(6); // at or below the baseline: not kept
    expect(m.redelivery(6)).toBe('before-epoch');
  });

  it('stays bounded: past 4096 own ranges the oldest is folded into the baseline', () => {
    const m = new LaneMarks();
    for (let seq = 2; seq <= 2 * 4097; seq += 2) m.appliedHere(seq);
    expect(m.baseline).toBe(2);
    expect(m.redelivery(1)).toBe('before-epoch');
    expect(m.redelivery(3)).toBe('anomaly');
  });
});
