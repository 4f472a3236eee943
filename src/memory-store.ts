/** The Store port in memory: for unit tests and the deterministic simulation; passes the same contract suite as the ORM store. */
import type { AgentRecord, Assignment, DeadLetter, DeviceStream, ParkedRow, Store, WireMessage } from './ports.ts';

export function createMemoryStore(): Store {
  let assignment: Assignment | null = null;
  const agents = new Map<string, AgentRecord>();
  const streams = new Map<string, DeviceStream>();
  const parked: ParkedRow[] = [];
  const deadLetters: DeadLetter[] = [];
  let nextParkedId = 1;
  const copy = <T>(v: T): T => structuredClone(v);

  const stream = (deviceId: string) => {
    let s = streams.get(deviceId);
    if (!s) streams.set(deviceId, (s = { deviceId, nextSeq: 1, watermark: 0 }));
    return s;
  };

  return {
    async migrate() {},
    async reserveSeqs(deviceId, count) {
      const s = stream(deviceId);
      const first = s.nextSeq;
      s.nextSeq += count;
      return first;
    },
    async getAssignment() {
      return copy(assignment);
    },
    async recordFirstAgent(a) {
      assignment ??= { agentId: a.agentId, topic: a.topic, epoch: 1, lock: 0, phase: 'normal' };
      return copy(assignment);
    },
    async upsertAgent(a) {
      const old = agents.get(a.agentId);
      agents.set(a.agentId, { ...a, lastHeartbeat: old && old.lastHeartbeat > a.lastHeartbeat ? old.lastHeartbeat : a.lastHeartbeat });
    },
    async listAgents() {
      return [...agents.values()].sort((a, b) => a.agentId.localeCompare(b.agentId)).map(copy);
    },
    async park(messages: WireMessage[]) {
      for (const m of messages) {
        if (parked.some((p) => p.message.deviceId === m.deviceId && p.message.seq === m.seq)) continue;
        parked.push({ id: nextParkedId++, message: copy(m) });
      }
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
