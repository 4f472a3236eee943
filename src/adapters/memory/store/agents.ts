/** AgentStore in memory: the agents heard of, the latest heartbeat kept. */
import { copy, type MemoryDb } from './state.ts';
import type { AgentStore } from '../../../ports.ts';

export function memoryAgents(db: MemoryDb): AgentStore {
  return {
    async upsertAgent(a) {
      const old = db.agents.get(a.agentId);
      db.agents.set(a.agentId, { ...a, lastHeartbeat: old && old.lastHeartbeat > a.lastHeartbeat ? old.lastHeartbeat : a.lastHeartbeat });
    },
    async listAgents() {
      return [...db.agents.values()].sort((a, b) => a.agentId.localeCompare(b.agentId)).map(copy);
    },
  };
}
