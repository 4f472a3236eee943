/**
 * What the leading runtime knows about each seq of each device: applied, dead-lettered, or
 * outstanding (dispatched here, not settled). A seq counts as applied only when a receipt named
 * that seq itself, never because a higher one was: `applied()`, lag and the watermark (stored and
 * granted) are read from here.
 *
 * The one residual imprecision is the `floor`: the watermark the previous leader stored, loaded when
 * this runtime became leader. Every seq at or below it counts as settled, because this runtime
 * cannot know better (the receipts of those seqs were read by the previous leader; the stored
 * watermark never passed a seq that leader knew outstanding). Memory stays bounded: a run of
 * settled seqs that reaches the floor joins it, and past `maxRanges` the lowest run is folded in
 * (its gap then counts as settled: seqs of blocks abandoned long ago); dead-lettered seqs are kept
 * for the last `maxDead` per device.
 *
 * It also knows how far seqs were handed out (`handedOut`): by this runtime (each seq it
 * dispatched) and before it (the reservations stored when its term began). A receipt above that
 * names a seq nobody sent: the runtime refuses it, so no receipt can raise a watermark past what
 * was actually sent.
 */
import type { SettledRecord } from '../ports.ts';
import { SeqRanges } from '../seq-ranges.ts';

interface DeviceLedger {
  floor: number;
  /** settled (applied or dead-lettered) seqs above the floor */
  settled: SeqRanges;
  /** dead-lettered seqs, oldest first (a Set keeps insertion order) */
  dead: Set<number>;
  /** seqs dispatched here and not settled yet, increasing */
  outstanding: number[];
  /** when each of them was first dispatched here (the caller's clock), index for index */
  since: number[];
  /** no seq above it was ever handed out */
  handedOut: number;
}

export class AppliedLedger {
  private readonly devices = new Map<string, DeviceLedger>();

  constructor(private readonly limits: { maxRanges: number; maxDead: number } = { maxRanges: 4096, maxDead: 10_000 }) {}

  /** The stored watermark, when this runtime becomes leader: seqs at or below it count as settled. */
  raiseFloor(deviceId: string, seq: number): void {
    const d = this.device(deviceId);
    if (seq <= d.floor) return;
    d.floor = seq;
    d.settled.dropBelow(seq);
    const keep = d.outstanding.findIndex((s) => s > seq);
    const n = keep < 0 ? d.outstanding.length : keep;
    d.outstanding.splice(0, n);
    d.since.splice(0, n);
    this.compact(d);
  }

  /** Seqs up to `seq` may have been handed out before this runtime's term (the stored reservations). */
  handedOutBefore(deviceId: string, seq: number): void {
    const d = this.device(deviceId);
    d.handedOut = Math.max(d.handedOut, seq);
  }

  /** The highest seq known handed out (0: none). */
  handedOut(deviceId: string): number {
    return this.devices.get(deviceId)?.handedOut ?? 0;
  }

  /** A message this runtime accepted (sent or parked) or replayed, `at` then (the caller's clock; a replay keeps the first). */
  dispatched(deviceId: string, seq: number, at = 0): void {
    const d = this.device(deviceId);
    d.handedOut = Math.max(d.handedOut, seq);
    if (d.settled.has(seq)) return;
    const o = d.outstanding;
    if (o.length === 0 || o[o.length - 1]! < seq) {
      o.push(seq);
      d.since.push(at);
    } else {
      const i = lowerBound(o, seq);
      if (o[i] !== seq) {
        o.splice(i, 0, seq);
        d.since.splice(i, 0, at);
      }
    }
  }

  /** When the longest-outstanding seq of this device was dispatched here (null: none outstanding). */
  oldestOutstanding(deviceId: string): number | null {
    const since = this.devices.get(deviceId)?.since;
    // seqs go out nearly in order: the lowest seq is nearly always the oldest, but a replay of rows
    // parked before can insert below; one pass over the outstanding seqs, asked only on demand
    return since?.length ? since.reduce((a, b) => Math.min(a, b)) : null;
  }

  /** A receipt: `from`..`to` were applied. Returns how many of them were not known settled before. */
  applied(deviceId: string, from: number, to: number): number {
    const d = this.device(deviceId);
    const lo = Math.max(from, d.floor + 1);
    if (lo > to) return 0;
    const added = d.settled.addRange(lo, to);
    this.clearOutstanding(d, lo, to);
    this.compact(d);
    return added;
  }

  /** A seq that was not accepted after all (its publish or park failed): no longer outstanding. */
  withdraw(deviceId: string, seq: number): void {
    const d = this.devices.get(deviceId);
    if (d) this.clearOutstanding(d, seq, seq);
  }

  deadLettered(deviceId: string, seq: number): void {
    const d = this.device(deviceId);
    d.dead.add(seq);
    if (d.dead.size > this.limits.maxDead) d.dead.delete(d.dead.values().next().value!);
    if (seq > d.floor) d.settled.add(seq);
    this.clearOutstanding(d, seq, seq);
    this.compact(d);
  }

  /** A dead-lettered seq applied after all (an operator retried it): applied from now on, no longer dead-lettered. */
  retried(deviceId: string, seq: number): void {
    const d = this.device(deviceId);
    d.dead.delete(seq);
    if (seq > d.floor) d.settled.add(seq);
    this.clearOutstanding(d, seq, seq);
    this.compact(d);
  }

  isDeadLettered(deviceId: string, seq: number): boolean {
    return this.devices.get(deviceId)?.dead.has(seq) ?? false;
  }

  /** Applied for all this runtime can know: named by a receipt, or at or below the floor; never one dispatched here and still outstanding. */
  isApplied(deviceId: string, seq: number): boolean {
    const d = this.devices.get(deviceId);
    if (!d || d.dead.has(seq)) return false;
    const o = d.outstanding;
    if (o[lowerBound(o, seq)] === seq) return false;
    return seq <= d.floor || d.settled.has(seq);
  }

  /** The highest seq h such that h was settled and no seq at or below h is known outstanding. */
  watermark(deviceId: string): number {
    const d = this.devices.get(deviceId);
    if (!d) return 0;
    const high = Math.max(d.floor, d.settled.max() ?? 0);
    return d.outstanding.length ? Math.min(high, d.outstanding[0]! - 1) : high;
  }

  watermarks(): Record<string, number> {
    return Object.fromEntries([...this.devices.keys()].map((id) => [id, this.watermark(id)]));
  }

  /** What a new leader must know of this device: the watermark (its floor) and the settled runs above the floor. */
  record(deviceId: string): SettledRecord {
    const d = this.devices.get(deviceId);
    return { deviceId, watermark: this.watermark(deviceId), ranges: d ? d.settled.list().map((r) => [r.from, r.to] as [number, number]) : [] };
  }

  /** A record the previous leader stored, when this runtime becomes leader. */
  load(r: SettledRecord): void {
    this.handedOutBefore(r.deviceId, Math.max(r.watermark, ...r.ranges.map(([, to]) => to)));
    this.raiseFloor(r.deviceId, r.watermark);
    for (const [from, to] of r.ranges) this.applied(r.deviceId, from, to);
  }

  /** The highest seq dispatched here and not settled yet (null: none): what `drained()` waits to see settled. */
  highestOutstanding(deviceId: string): number | null {
    const o = this.devices.get(deviceId)?.outstanding;
    return o?.length ? o[o.length - 1]! : null;
  }

  /** The seqs at or below `seq` dispatched here and not settled yet: how many, the lowest (null: none). */
  outstandingThrough(deviceId: string, seq: number): { count: number; lowest: number } | null {
    const o = this.devices.get(deviceId)?.outstanding;
    if (!o?.length || o[0]! > seq) return null;
    const end = lowerBound(o, seq + 1);
    return { count: end, lowest: o[0]! };
  }

  /** seqs dispatched here and not settled yet (null: nothing dispatched here to this device) */
  lag(deviceId: string): number | null {
    return this.devices.get(deviceId)?.outstanding.length ?? null;
  }

  private clearOutstanding(d: DeviceLedger, from: number, to: number): void {
    const o = d.outstanding;
    const i = lowerBound(o, from);
    let j = i;
    while (j < o.length && o[j]! <= to) j++;
    if (j > i) {
      o.splice(i, j - i);
      d.since.splice(i, j - i);
    }
  }

  private compact(d: DeviceLedger): void {
    for (let r = d.settled.first(); r && (r.from <= d.floor + 1 || d.settled.size > this.limits.maxRanges); r = d.settled.first()) {
      d.floor = Math.max(d.floor, r.to);
      d.settled.shift();
    }
  }

  private device(deviceId: string): DeviceLedger {
    let d = this.devices.get(deviceId);
    if (!d) this.devices.set(deviceId, (d = { floor: 0, settled: new SeqRanges(), dead: new Set(), outstanding: [], since: [], handedOut: 0 }));
    return d;
  }
}

/** index of the first element >= seq */
function lowerBound(a: number[], seq: number): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
