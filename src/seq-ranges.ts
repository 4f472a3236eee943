/**
 * A set of seqs kept as sorted, disjoint, non-adjacent closed ranges: what exact delivery
 * accounting remembers. Seqs of a device mostly arrive in increasing runs (a seq block), so the
 * set stays a handful of ranges; gaps come from blocks a leader abandoned and from seqs nobody
 * reported. Callers bound it with `dropBelow` (agent) or `compact` (runtime).
 */
export interface SeqRange {
  from: number;
  to: number;
}

export class SeqRanges {
  private ranges: SeqRange[] = [];

  get size(): number {
    return this.ranges.length;
  }

  /** the highest seq in the set, or null */
  max(): number | null {
    return this.ranges.length ? this.ranges[this.ranges.length - 1]!.to : null;
  }

  /** the ranges, lowest first (copies) */
  list(): SeqRange[] {
    return this.ranges.map((r) => ({ ...r }));
  }

  has(seq: number): boolean {
    const i = this.indexAtOrBefore(seq);
    return i >= 0 && this.ranges[i]!.to >= seq;
  }

  /** Adds a seq; returns 1 when it was not in the set yet, else 0. */
  add(seq: number): number {
    return this.addRange(seq, seq);
  }

  /** Adds `from`..`to`; returns how many of those seqs were not in the set yet. */
  addRange(from: number, to: number): number {
    if (to < from) return 0;
    const rs = this.ranges;
    // fast path: at or after the start of the last run
    const last = rs[rs.length - 1];
    if (last && from >= last.from) {
      if (from <= last.to + 1) {
        const added = Math.max(0, to - last.to);
        last.to = Math.max(last.to, to);
        return added;
      }
      rs.push({ from, to });
      return to - from + 1;
    }
    // first range that ends at or after from - 1 (may merge), then every one it overlaps or touches
    let i = 0;
    while (i < rs.length && rs[i]!.to < from - 1) i++;
    let j = i;
    let lo = from;
    let hi = to;
    let known = 0;
    while (j < rs.length && rs[j]!.from <= to + 1) {
      known += Math.max(0, Math.min(to, rs[j]!.to) - Math.max(from, rs[j]!.from) + 1);
      lo = Math.min(lo, rs[j]!.from);
      hi = Math.max(hi, rs[j]!.to);
      j++;
    }
    rs.splice(i, j - i, { from: lo, to: hi });
    return to - from + 1 - known;
  }

  /** Forgets every seq at or below `seq`. */
  dropBelow(seq: number): void {
    let k = 0;
    while (k < this.ranges.length && this.ranges[k]!.to <= seq) k++;
    if (k > 0) this.ranges.splice(0, k);
    const first = this.ranges[0];
    if (first && first.from <= seq) first.from = seq + 1;
  }

  /** Removes and returns the lowest range. */
  shift(): SeqRange | undefined {
    return this.ranges.shift();
  }

  /** the lowest range, without removing it */
  first(): SeqRange | undefined {
    return this.ranges[0];
  }

  private indexAtOrBefore(seq: number): number {
    let lo = 0;
    let hi = this.ranges.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.ranges[mid]!.from <= seq) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }
}
