/** DeadLetterStore in memory: one per message (by device and seq); every malformed one (seq 0) kept. */
import { copy, type MemoryDb } from './state.ts';
import type { DeadLetterStore } from '../../../ports.ts';

export function memoryDeadLetters(db: MemoryDb): DeadLetterStore {
  return {
    async deadLetter(e) {
      if (e.seq > 0 && db.deadLetters.some((d) => d.deviceId === e.deviceId && d.seq === e.seq)) return;
      db.deadLetters.push(copy(e));
    },
    async listDeadLetters() {
      return db.deadLetters.map(copy);
    },
  };
}
