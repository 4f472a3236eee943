/** SeqStore in memory: seq blocks per device, reserved only in a live leader term. */
import { notInTerm } from '../../../errors.ts';
import { holds, stream, type MemoryDb } from './state.ts';
import type { SeqStore } from '../../../ports.ts';

export function memorySeqs(db: MemoryDb): SeqStore {
  return {
    async reserveSeqs(deviceId, count, term) {
      if (!holds(db, term)) throw notInTerm(deviceId, term);
      const s = stream(db, deviceId);
      const first = s.nextSeq;
      s.nextSeq += count;
      return first;
    },
  };
}
