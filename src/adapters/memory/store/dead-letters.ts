/**
 * DeadLetterStore in memory: one per message (by device and seq; a second refusal of it updates
 * that one and opens it again), every malformed one (seq 0) kept; ids rise as in the ORM store.
 */
import { copy, type MemoryDb } from './state.ts';
import type { DeadLetterStore, DeadLetterView } from '../../../ports.ts';

export function memoryDeadLetters(db: MemoryDb): DeadLetterStore {
  const newestFirst = () => [...db.deadLetters].reverse();
  return {
    async deadLetter(e) {
      const old = e.seq > 0 ? db.deadLetters.find((d) => d.deviceId === e.deviceId && d.seq === e.seq) : undefined;
      if (old) {
        Object.assign(old, { reason: e.reason, status: e.status, response: e.response, epoch: e.epoch, agentId: e.agentId, at: db.now(), resolution: null });
        return;
      }
      db.deadLetters.push({ id: db.nextDeadLetterId++, ...copy(e), at: db.now(), resolution: null });
    },
    async listDeadLetters(f = {}) {
      const reason = f.reason?.toLowerCase();
      const keep = (d: DeadLetterView) =>
        (f.deviceId === undefined || d.deviceId === f.deviceId) &&
        (reason === undefined || d.reason.toLowerCase().includes(reason)) &&
        (!f.open || d.resolution === null);
      return newestFirst().filter(keep).slice(0, f.limit ?? 1000).map(copy);
    },
    async getDeadLetter(id) {
      return copy(db.deadLetters.find((d) => d.id === id) ?? null);
    },
    async findDeadLetter(deviceId, seq) {
      return copy(newestFirst().find((d) => d.deviceId === deviceId && d.seq === seq) ?? null);
    },
    async resolveDeadLetter(id, resolution) {
      const d = db.deadLetters.find((x) => x.id === id);
      if (!d) return false;
      d.resolution = copy(resolution);
      return true;
    },
  };
}
