/** LineStore in memory: each device's standing order, written only in a live leader term. */
import { copy, inTerm, type MemoryDb } from './state.ts';
import type { LineStore } from '../../../ports.ts';

export function memoryLines(db: MemoryDb): LineStore {
  return {
    async lineOrders() {
      return [...db.lines.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId)).map(copy);
    },
    async setLineOrder(order, term) {
      inTerm(db, term, `the order for device ${order.deviceId}'s line was not stored`);
      db.lines.set(order.deviceId, copy(order));
    },
  };
}
