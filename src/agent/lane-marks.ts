/**
 * What one device lane knows applied on its device: its watermark (`lastApplied`), the seqs it
 * settled itself (kept as ranges, above the baseline), and its `baseline`, what others were known
 * to have applied when its epoch began (the device's watermark then, or the watermark of the grant
 * that brought the epoch). From these it tells a message at or below the watermark that is a known
 * redelivery (settled here, or applied before this epoch) from an anomaly (see device-lanes.ts).
 */
import { SeqRanges } from '../seq-ranges.ts';

/** own ranges kept per lane before the lowest is folded into the baseline (gaps that old are abandoned seq blocks) */
const MAX_SETTLED_RANGES = 4096;

/** A seq at or below the watermark: settled by this lane, applied before its epoch, or neither. */
export type Redelivery = 'settled-here' | 'before-epoch' | 'anomaly';

export class LaneMarks {
  /** the highest seq known applied on the device */
  lastApplied = 0;
  /** every seq at or below it is known settled by others */
  baseline = 0;
  /** the epoch under which this lane last asked the device for its watermark */
  epoch = 0;
  /** whether the device answered that question (a redelivery is then skipped, not written twice) */
  reportsWatermark = false;
  /** seqs this lane applied or dead-lettered itself, above `baseline` */
  private readonly settled = new SeqRanges();

  /** A lease grant's watermark (DeviceLanes.setWatermark): the grant of an epoch not begun here (or without one) raises the baseline too. */
  granted(seq: number, epoch?: number): void {
    this.lastApplied = Math.max(this.lastApplied, seq);
    if (epoch === undefined || epoch !== this.epoch) this.raiseBaseline(seq);
  }

  /** The lane asks the device for its watermark under a new epoch. */
  beginEpoch(epoch: number): void {
    this.epoch = epoch;
  }

  /** The device's answer (null: it does not report one): what it applied before this epoch was applied by others (or by this lane before). */
  deviceAnswered(wm: number | null): void {
    this.reportsWatermark = wm !== null;
    if (wm !== null && wm > this.lastApplied) this.lastApplied = wm;
    if (wm !== null) this.raiseBaseline(wm);
  }

  /**
   * What a seq at or below the watermark is; null for one above it (to send), unless this lane
   * settled it: a seq it dead-lettered comes back above the watermark as a copy (the broker's, or an
   * operator's retry whose order was replaced by a skip before it went out), never to be sent as usual.
   */
  redelivery(seq: number): Redelivery | null {
    if (this.settled.has(seq)) return 'settled-here';
    if (seq > this.lastApplied) return null;
    return seq <= this.baseline ? 'before-epoch' : 'anomaly';
  }

  /** Whether the seq is known settled: by this lane (applied or dead-lettered here), or by others before its epoch. */
  known(seq: number): boolean {
    return seq <= this.baseline || this.settled.has(seq);
  }

  /** This lane applied the seq. */
  appliedHere(seq: number): void {
    this.lastApplied = Math.max(this.lastApplied, seq);
    this.settle(seq);
  }

  /** This lane settled the seq (applied or dead-lettered). */
  settle(seq: number): void {
    if (seq <= this.baseline) return;
    this.settled.add(seq);
    // memory stays bounded: the oldest run is folded into the baseline, gap included
    if (this.settled.size > MAX_SETTLED_RANGES) this.raiseBaseline(this.settled.first()!.to);
  }

  private raiseBaseline(seq: number): void {
    if (seq <= this.baseline) return;
    this.baseline = seq;
    this.settled.dropBelow(seq);
  }
}
