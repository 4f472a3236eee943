/** Checks a device's own applied log against what was dispatched (DESIGN.md §8, invariants 1, 2, 4). */

export interface DeviceCheck {
  deviceId: string;
  expected: number;
  applied: number;
  missing: number;
  duplicates: number;
  /** writes whose seq was not above the previous one */
  outOfOrder: number;
  ok: boolean;
}

/** `applied`: the seqs in the order the device applied them; `expected`: every seq dispatched. */
export function checkDevice(deviceId: string, applied: ReadonlyArray<number | null>, expected: Iterable<number>): DeviceCheck {
  const want = new Set(expected);
  const seen = new Set<number>();
  let duplicates = 0;
  let outOfOrder = 0;
  let last = -Infinity;
  for (const seq of applied) {
    if (seq === null) continue;
    if (seen.has(seq)) {
      duplicates++;
      continue;
    }
    seen.add(seq);
    if (seq < last) outOfOrder++;
    last = Math.max(last, seq);
  }
  let missing = 0;
  for (const s of want) if (!seen.has(s)) missing++;
  return { deviceId, expected: want.size, applied: seen.size, missing, duplicates, outOfOrder, ok: missing === 0 && duplicates === 0 && outOfOrder === 0 };
}

/** Writes a device accepted from an epoch lower than one it had already accepted (invariant 3). */
export function staleWrites(applied: ReadonlyArray<{ epoch: number | null }>): number {
  let max = 0;
  let stale = 0;
  for (const e of applied) {
    if (e.epoch === null) continue;
    if (e.epoch < max) stale++;
    max = Math.max(max, e.epoch);
  }
  return stale;
}
