/**
 * AssignmentStore over PostgreSQL: the active agent (`agent_service_used`, one row) and the history
 * of switches (`switches`). Every write is a leader's, in its term, in one transaction with the
 * compare-and-set on the assignment row first (see OrmDb.txInTerm).
 */
import type { OrmDb, Row } from './connection.ts';
import type { Assignment, AssignmentStore, Phase, SwitchRecord } from '../../ports.ts';

const toAssignment = (r: Row): Assignment => ({
  agentId: String(r.agent_id),
  topic: String(r.topic),
  epoch: Number(r.epoch),
  lock: Number(r.lock) === 1 ? 1 : 0,
  phase: String(r.phase) as Phase,
  switchId: r.switch_id === null ? null : String(r.switch_id),
  previousAgent: r.previous_agent === null ? null : String(r.previous_agent),
});

const date = (v: unknown) => (v === null || v === undefined ? null : new Date(v as string));

const toSwitch = (r: Row): SwitchRecord => ({
  id: String(r.id),
  fromAgent: r.from_agent === null ? null : String(r.from_agent),
  toAgent: r.to_agent === null ? null : String(r.to_agent),
  epoch: Number(r.epoch),
  reason: String(r.reason),
  phase: String(r.phase) as Phase,
  startedAt: new Date(r.started_at as string),
  drainingAt: date(r.draining_at),
  replayingAt: date(r.replaying_at),
  completedAt: date(r.completed_at),
  moved: Number(r.moved),
  replayed: Number(r.replayed),
});

const assignmentOf = async (rows: Row[], what: string) => {
  if (!rows[0]) throw new Error(`${what}: no switch is running with that id`);
  return toAssignment(rows[0]);
};

export function ormAssignment({ q, inTerm, txInTerm }: OrmDb): AssignmentStore {
  return {
    async getAssignment() {
      const rows = await q('select * from agent_service_used where id = 1');
      return rows[0] ? toAssignment(rows[0]) : null;
    },

    async recordFirstAgent(a, term) {
      await inTerm(
        term,
        'no first agent recorded',
        `insert into agent_service_used (id, agent_id, topic, status, host, lock, epoch, phase)
         select 1, ?, ?, 'up', ?, 0, 1, 'normal' where exists (select 1 from held) on conflict (id) do nothing`,
        [a.agentId, a.topic, a.host],
      );
      const rows = await q('select * from agent_service_used where id = 1');
      return toAssignment(rows[0]!);
    },

    async beginSwitch({ expectEpoch, switchId, reason, term }) {
      const rows = await txInTerm(term, 'no switch started', [
        [
          `update agent_service_used set epoch = epoch + 1, lock = 1, phase = 'switching', switch_id = ?,
             previous_agent = agent_id, updated_at = now()
           where id = 1 and epoch = ? and lock = 0 returning *`,
          [switchId, expectEpoch],
        ],
        [
          `insert into switches (id, from_agent, to_agent, epoch, reason, phase)
           select switch_id, previous_agent, null, epoch, ?, 'switching' from agent_service_used where id = 1`,
          [reason],
        ],
      ]);
      return rows[0] ? toAssignment(rows[0]) : null;
    },

    async recordCandidate(switchId, a, term) {
      const rows = await txInTerm(term, 'no candidate recorded', [
        [
          `update agent_service_used set agent_id = ?, topic = ?, host = ?, updated_at = now()
           where id = 1 and switch_id = ? and phase = 'switching' returning *`,
          [a.agentId, a.topic, a.host, switchId],
        ],
        ['update switches set to_agent = ? where id = ?', [a.agentId, switchId]],
      ]);
      return assignmentOf(rows, 'recordCandidate');
    },

    async setPhase(switchId, phase, term, counts = {}) {
      const stamp = phase === 'draining' ? 'draining_at' : 'replaying_at';
      const rows = await txInTerm(term, `the switch was not moved to ${phase}`, [
        [`update agent_service_used set phase = ?, updated_at = now() where id = 1 and switch_id = ? and lock = 1 returning *`, [phase, switchId]],
        [`update switches set phase = ?, ${stamp} = coalesce(${stamp}, now()), moved = coalesce(?, moved) where id = ?`, [phase, counts.moved ?? null, switchId]],
      ]);
      return assignmentOf(rows, 'setPhase');
    },

    async completeSwitch(switchId, replayed, term) {
      const rows = await txInTerm(term, 'the switch was not completed', [
        [`update agent_service_used set phase = 'normal', lock = 0, updated_at = now() where id = 1 and switch_id = ? returning *`, [switchId]],
        [`update switches set phase = 'normal', completed_at = coalesce(completed_at, now()), replayed = ? where id = ?`, [replayed, switchId]],
      ]);
      return assignmentOf(rows, 'completeSwitch');
    },

    async listSwitches() {
      const rows = await q('select * from switches order by started_at, epoch');
      return rows.map(toSwitch);
    },
  };
}
