/** DeliveryStore in memory: watermarks that only rise, and settled ranges replaced only by a higher rev. */
import { copy, inTerm, stream, type MemoryDb } from './state.ts';
import type { DeliveryStore } from '../../../ports.ts';

export function memoryDelivery(db: MemoryDb): DeliveryStore {
  /** a watermark rises (never falls), and the next seq stays above it */
  const raise = (deviceId: string, watermark: number) => {
    const s = stream(db, deviceId);
    s.watermark = Math.max(s.watermark, watermark);
    s.nextSeq = Math.max(s.nextSeq, watermark + 1);
  };
  return {
    async recordSettled(entries, term, rev) {
      inTerm(db, term, 'settled seqs not recorded');
      for (const e of entries) {
        raise(e.deviceId, e.watermark);
        if (rev > (db.settledRevs.get(e.deviceId) ?? 0)) {
          db.settled.set(e.deviceId, copy(e.ranges));
          db.settledRevs.set(e.deviceId, rev);
        }
      }
    },
    async settledRecords() {
      return [...db.streams.values()].map((s) => ({ deviceId: s.deviceId, watermark: s.watermark, ranges: copy(db.settled.get(s.deviceId) ?? []) }));
    },
    async advanceWatermarks(marks) {
      for (const m of marks) raise(m.deviceId, m.seq);
    },
    async deviceStreams() {
      return [...db.streams.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId)).map(copy);
    },
  };
}
