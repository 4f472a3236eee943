/** AssignmentStore in memory: the active agent and the switches, with the ORM store's compare-and-set rules. */
import { copy, inTerm, type MemoryDb } from './state.ts';
import type { Assignment, AssignmentStore } from '../../../ports.ts';

export function memoryAssignment(db: MemoryDb): AssignmentStore {
  const running = (switchId: string, what: string): Assignment => {
    const a = db.assignment;
    if (!a || a.switchId !== switchId || a.lock !== 1) throw new Error(`${what}: no switch is running with that id`);
    return a;
  };
  const record = (switchId: string) => db.switches.find((r) => r.id === switchId)!;

  return {
    async getAssignment() {
      return copy(db.assignment);
    },
    async recordFirstAgent(a, term) {
      inTerm(db, term, 'no first agent recorded');
      db.assignment ??= { agentId: a.agentId, topic: a.topic, epoch: 1, lock: 0, phase: 'normal', switchId: null, previousAgent: null };
      return copy(db.assignment);
    },
    async beginSwitch({ expectEpoch, switchId, reason, term }) {
      inTerm(db, term, 'no switch started');
      const cur = db.assignment;
      if (!cur || cur.epoch !== expectEpoch || cur.lock !== 0) return null;
      const a = (db.assignment = { ...cur, epoch: cur.epoch + 1, lock: 1, phase: 'switching', switchId, previousAgent: cur.agentId });
      db.switches.push({
        id: switchId, fromAgent: a.previousAgent, toAgent: null, epoch: a.epoch, reason, phase: 'switching',
        startedAt: new Date(db.now()), drainingAt: null, replayingAt: null, completedAt: null, moved: 0, replayed: 0,
      });
      return copy(a);
    },
    async recordCandidate(switchId, a, term) {
      inTerm(db, term, 'no candidate recorded');
      const cur = running(switchId, 'recordCandidate');
      if (cur.phase !== 'switching') throw new Error('recordCandidate: the switch is past choosing');
      db.assignment = { ...cur, agentId: a.agentId, topic: a.topic };
      record(switchId).toAgent = a.agentId;
      return copy(db.assignment);
    },
    async setPhase(switchId, phase, term, counts = {}) {
      inTerm(db, term, `the switch was not moved to ${phase}`);
      db.assignment = { ...running(switchId, 'setPhase'), phase };
      const r = record(switchId);
      r.phase = phase;
      if (phase === 'draining') r.drainingAt ??= new Date(db.now());
      else r.replayingAt ??= new Date(db.now());
      if (counts.moved !== undefined) r.moved = counts.moved;
      return copy(db.assignment);
    },
    async completeSwitch(switchId, replayed, term) {
      inTerm(db, term, 'the switch was not completed');
      if (db.assignment?.switchId !== switchId) throw new Error('completeSwitch: no switch is running with that id');
      db.assignment = { ...db.assignment, phase: 'normal', lock: 0 };
      const r = record(switchId);
      r.phase = 'normal';
      r.completedAt ??= new Date(db.now());
      r.replayed = replayed;
      return copy(db.assignment);
    },
    async listSwitches() {
      return db.switches.map(copy);
    },
  };
}
