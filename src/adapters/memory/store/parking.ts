/** ParkingStore in memory: parked messages in order; one resolved as not parked is refused for good, as in the ORM store. */
import { copy, inTerm, type MemoryDb } from './state.ts';
import type { ParkedFilter, ParkedRow, ParkingStore } from '../../../ports.ts';

/** whether a row is one the filter takes (the same condition as the SQL's) */
const takes = (f: ParkedFilter | undefined) => (r: ParkedRow) =>
  (f?.deviceId === undefined || r.message.deviceId === f.deviceId) && !(f?.except ?? []).includes(r.message.deviceId);

export function memoryParking(db: MemoryDb): ParkingStore {
  const isParked = (deviceId: string, seq: number) => db.parked.some((p) => p.message.deviceId === deviceId && p.message.seq === seq);
  return {
    async park(messages, term) {
      inTerm(db, term, 'nothing parked: the messages were not stored');
      for (const m of messages) {
        if (isParked(m.deviceId, m.seq) || db.refused.has(`${m.deviceId}:${m.seq}`)) continue;
        db.parked.push({ id: db.nextParkedId++, message: copy(m) });
      }
    },
    async resolveParked(keys) {
      // as the SQL statement: what is not parked is marked refused, so a late park of it does nothing
      const found = keys.filter((k) => isParked(k.deviceId, k.seq));
      for (const k of keys) if (!found.includes(k)) db.refused.add(`${k.deviceId}:${k.seq}`);
      return found.map((k) => ({ deviceId: k.deviceId, seq: k.seq }));
    },
    async fetchParked(limit, filter) {
      return db.parked.filter(takes(filter)).slice(0, limit).map(copy);
    },
    async deleteParked(ids) {
      const gone = new Set(ids);
      for (let i = db.parked.length - 1; i >= 0; i--) if (gone.has(db.parked[i]!.id)) db.parked.splice(i, 1);
    },
    async countParked(filter) {
      return db.parked.filter(takes(filter)).length;
    },
    async countParkedByDevice() {
      const counts: Record<string, number> = {};
      for (const p of db.parked) counts[p.message.deviceId] = (counts[p.message.deviceId] ?? 0) + 1;
      return counts;
    },
  };
}
