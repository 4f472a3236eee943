/** AgentStore over PostgreSQL: the `agents` table, the latest heartbeat kept. */
import type { OrmDb } from './connection.ts';
import type { AgentStore } from '../../ports.ts';

export function ormAgents({ q }: OrmDb): AgentStore {
  return {
    async upsertAgent(a) {
      await q(
        `insert into agents (agent_id, topic, host, status, last_heartbeat) values (?, ?, ?, ?, ?)
         on conflict (agent_id) do update set topic = excluded.topic, host = excluded.host,
           status = excluded.status, last_heartbeat = greatest(agents.last_heartbeat, excluded.last_heartbeat)`,
        [a.agentId, a.topic, a.host, a.status, a.lastHeartbeat],
      );
    },

    async listAgents() {
      const rows = await q('select * from agents order by agent_id');
      return rows.map((r) => ({
        agentId: String(r.agent_id),
        topic: String(r.topic),
        host: String(r.host),
        status: r.status === 'up' ? 'up' : 'down',
        lastHeartbeat: new Date(r.last_heartbeat as string),
      }));
    },
  };
}
