/** The Store port in memory: for unit tests and the deterministic simulation; passes the same contract suite as the ORM store. */
import { notInTerm, termOver } from '../../errors.ts';
import type { AgentRecord, Assignment, DeadLetter, DeviceStream, LeaderTerm, ParkedRow, Store, SwitchRecord, WireMessage } from '../../ports.ts';

export interface MemoryStoreOptions {
  /** the database clock (ms), for leadership expiry; the simulation passes its own */
  now?: () => number;
}

export function createMemoryStore(opts: MemoryStoreOptions = {}): Store {
  const now = opts.now ?? (() => Date.now());
  let assignment: Assignment | null = null;
  const switches: SwitchRecord[] = [];
  let leader: { holder: string; epoch: number; expiresAt: number } | null = null;
  const agents = new Map<string, AgentRecord>();
  const streams = new Map<string, DeviceStream>();
  const settled = new Map<string, Array<[number, number]>>();
  const settledRevs = new Map<string, number>();
  const parked: ParkedRow[] = [];
  /** messages an ambiguous park was resolved as not storing (by device and seq) */
  const refused = new Set<string>();
  const deadLetters: DeadLetter[] = [];
  let nextParkedId = 1;
  const copy = <T>(v: T): T => structuredClone(v);

  const running = (switchId: string, what: string): Assignment => {
    if (!assignment || assignment.switchId !== switchId || assignment.lock !== 1) throw new Error(`${what}: no switch is running with that id`);
    return assignment;
  };
  const record = (switchId: string) => switches.find((r) => r.id === switchId)!;

  const stream = (deviceId: string) => {
    let s = streams.get(deviceId);
    if (!s) streams.set(deviceId, (s = { deviceId, nextSeq: 1, watermark: 0 }));
    return s;
  };

  // the same condition as the SQL statements: this term holds the leadership row, unexpired
  const holds = (term: LeaderTerm) => !!leader && leader.holder === term.holder && leader.epoch === term.epoch && leader.expiresAt >= now();
  const inTerm = (term: LeaderTerm, what: string) => {
    if (!holds(term)) throw termOver(what, term);
  };

  return {
    async migrate() {},
    async reserveSeqs(deviceId, count, term) {
      if (!holds(term)) throw notInTerm(deviceId, term);
      const s = stream(deviceId);
      const first = s.nextSeq;
      s.nextSeq += count;
      return first;
    },
    async getAssignment() {
      return copy(assignment);
    },
    async recordFirstAgent(a, term) {
      inTerm(term, 'no first agent recorded');
      assignment ??= { agentId: a.agentId, topic: a.topic, epoch: 1, lock: 0, phase: 'normal', switchId: null, previousAgent: null };
      return copy(assignment);
    },
    async beginSwitch({ expectEpoch, switchId, reason, term }) {
      inTerm(term, 'no switch started');
      if (!assignment || assignment.epoch !== expectEpoch || assignment.lock !== 0) return null;
      assignment = { ...assignment, epoch: assignment.epoch + 1, lock: 1, phase: 'switching', switchId, previousAgent: assignment.agentId };
      switches.push({
        id: switchId, fromAgent: assignment.previousAgent, toAgent: null, epoch: assignment.epoch, reason, phase: 'switching',
        startedAt: new Date(now()), drainingAt: null, replayingAt: null, completedAt: null, moved: 0, replayed: 0,
      });
      return copy(assignment);
    },
    async recordCandidate(switchId, a, term) {
      inTerm(term, 'no candidate recorded');
      const cur = running(switchId, 'recordCandidate');
      if (cur.phase !== 'switching') throw new Error('recordCandidate: the switch is past choosing');
      assignment = { ...cur, agentId: a.agentId, topic: a.topic };
      record(switchId).toAgent = a.agentId;
      return copy(assignment);
    },
    async setPhase(switchId, phase, term, counts = {}) {
      inTerm(term, `the switch was not moved to ${phase}`);
      assignment = { ...running(switchId, 'setPhase'), phase };
      const r = record(switchId);
      r.phase = phase;
      if (phase === 'draining') r.drainingAt ??= new Date(now());
      else r.replayingAt ??= new Date(now());
      if (counts.moved !== undefined) r.moved = counts.moved;
      return copy(assignment);
    },
    async completeSwitch(switchId, replayed, term) {
      inTerm(term, 'the switch was not completed');
      if (assignment?.switchId !== switchId) throw new Error('completeSwitch: no switch is running with that id');
      assignment = { ...assignment, phase: 'normal', lock: 0 };
      const r = record(switchId);
      r.phase = 'normal';
      r.completedAt ??= new Date(now());
      r.replayed = replayed;
      return copy(assignment);
    },
    async listSwitches() {
      return switches.map(copy);
    },
    async acquireLeadership(holder, ttlMs, renew = null) {
      // the same rule as the SQL statement: only a renewal of the current, unexpired term keeps its epoch
      const t = now();
      const cur = leader;
      if (!cur || cur.expiresAt < t || (cur.holder === holder && (renew === null || cur.epoch === renew))) {
        const keep = !!cur && cur.expiresAt >= t && cur.holder === holder && cur.epoch === renew;
        const epoch = !cur ? 1 : keep ? cur.epoch : cur.epoch + 1;
        leader = { holder, epoch, expiresAt: t + ttlMs };
        return { leader: true, holder, epoch };
      }
      return { leader: false, holder: cur.holder, epoch: cur.epoch };
    },
    async releaseLeadership(holder) {
      if (leader?.holder === holder) leader.expiresAt = now() - 1;
    },
    async upsertAgent(a) {
      const old = agents.get(a.agentId);
      agents.set(a.agentId, { ...a, lastHeartbeat: old && old.lastHeartbeat > a.lastHeartbeat ? old.lastHeartbeat : a.lastHeartbeat });
    },
    async listAgents() {
      return [...agents.values()].sort((a, b) => a.agentId.localeCompare(b.agentId)).map(copy);
    },
    async park(messages: WireMessage[], term) {
      inTerm(term, 'nothing parked: the messages were not stored');
      for (const m of messages) {
        if (parked.some((p) => p.message.deviceId === m.deviceId && p.message.seq === m.seq) || refused.has(`${m.deviceId}:${m.seq}`)) continue;
        parked.push({ id: nextParkedId++, message: copy(m) });
      }
    },
    async resolveParked(keys) {
      // as the SQL statement: what is not parked is marked refused, so a late park of it does nothing
      const found = keys.filter((k) => parked.some((p) => p.message.deviceId === k.deviceId && p.message.seq === k.seq));
      for (const k of keys) if (!found.includes(k)) refused.add(`${k.deviceId}:${k.seq}`);
      return found.map((k) => ({ deviceId: k.deviceId, seq: k.seq }));
    },
    async fetchParked(limit) {
      return parked.slice(0, limit).map(copy);
    },
    async deleteParked(ids) {
      const gone = new Set(ids);
      for (let i = parked.length - 1; i >= 0; i--) if (gone.has(parked[i]!.id)) parked.splice(i, 1);
    },
    async countParked() {
      return parked.length;
    },
    async recordSettled(entries, term, rev) {
      inTerm(term, 'settled seqs not recorded');
      for (const e of entries) {
        const s = stream(e.deviceId);
        s.watermark = Math.max(s.watermark, e.watermark);
        s.nextSeq = Math.max(s.nextSeq, e.watermark + 1);
        if (rev > (settledRevs.get(e.deviceId) ?? 0)) {
          settled.set(e.deviceId, copy(e.ranges));
          settledRevs.set(e.deviceId, rev);
        }
      }
    },
    async settledRecords() {
      return [...streams.values()].map((s) => ({ deviceId: s.deviceId, watermark: s.watermark, ranges: copy(settled.get(s.deviceId) ?? []) }));
    },
    async advanceWatermarks(marks) {
      for (const m of marks) {
        const s = stream(m.deviceId);
        s.watermark = Math.max(s.watermark, m.seq);
        s.nextSeq = Math.max(s.nextSeq, m.seq + 1);
      }
    },
    async deviceStreams() {
      return [...streams.values()].sort((a, b) => a.deviceId.localeCompare(b.deviceId)).map(copy);
    },
    async deadLetter(e) {
      if (e.seq > 0 && deadLetters.some((d) => d.deviceId === e.deviceId && d.seq === e.seq)) return;
      deadLetters.push(copy(e));
    },
    async listDeadLetters() {
      return deadLetters.map(copy);
    },
    async close() {},
  };
}
