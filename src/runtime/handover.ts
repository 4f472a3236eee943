/**
 * The planned handover (`runtime.handover()`, and the active agent asking for one as it stops):
 * checks that one can run here and now (this runtime leads, the coordinator is `normal`, another
 * agent is healthy, `to` names one), sends the coordinator its planned switch
 * (`coordinator.handover`), and answers once that switch completed: the new agent is active. The
 * outcome is recorded in the audit table. A second request while a planned switch runs joins it
 * (`already`). A refusal that concerns no agent (this runtime does not lead) is not recorded.
 */
import type { Logger } from 'pino';
import type { ActionBy, ActionResult } from '../api.ts';
import { BatonError, isBatonError } from '../errors.ts';
import type { AuditEntry, Clock } from '../ports.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';
import type { Leadership } from './leadership.ts';
import { followPlannedSwitch, type SwitchOutcome } from './handover-follow.ts';

export interface HandoverDeps {
  runtimeId: string;
  clock: Clock;
  log: Logger;
  coordinator(): Pick<CoordinatorActor, 'send' | 'getSnapshot' | 'on' | 'subscribe'>;
  registry: Pick<AgentRegistry, 'list'>;
  leadership: Pick<Leadership, 'leading' | 'leader'>;
  audit: { record(e: Pick<AuditEntry, 'action' | 'target' | 'by' | 'outcome' | 'detail'>): Promise<AuditEntry> };
  /** logged at most every 10 s per kind (a stopping agent asks with every heartbeat) */
  refused(kind: string, fields: Record<string, unknown>, msg: string): void;
}

export type HandoverOptions = { to?: string; timeoutMs?: number } & ActionBy;

/** how long `handover()` waits for the switch to complete unless told */
export const HANDOVER_TIMEOUT_MS = 60_000;

export class Handovers {
  constructor(private readonly d: HandoverDeps) {}

  /** `runtime.handover()` */
  readonly request = async (opts: HandoverOptions = {}): Promise<ActionResult> => {
    const { d } = this;
    const by = opts.by?.trim() ? opts.by : 'host';
    if (!d.leadership.leading) {
      const leader = d.leadership.leader();
      throw new BatonError('not-leader', `no handover was started: this runtime (${d.runtimeId}) is standing by; ${leader ? `runtime ${leader} leads: ask it` : 'no runtime leads right now: try again once one does'}`, { leader });
    }
    const snap = d.coordinator().getSnapshot();
    const a = snap.context.assignment;
    const timeoutMs = opts.timeoutMs ?? HANDOVER_TIMEOUT_MS;
    const target = opts.to ?? a?.agentId ?? '-';
    try {
      // a planned switch runs: joined (before its begin step answered, the next planned switch to start is it)
      if (snap.context.handover !== null && !snap.matches('normal')) {
        return await this.recorded('already', by, await followPlannedSwitch(d, { switchId: a?.lock === 1 ? a.switchId : null, timeoutMs }));
      }
      const to = this.check(opts.to ?? null);
      const outcome = followPlannedSwitch(d, { switchId: null, timeoutMs });
      d.coordinator().send({ type: 'coordinator.handover', to, by });
      return await this.recorded('done', by, await outcome);
    } catch (err) {
      if (isBatonError(err) && err.code !== 'database-unavailable') {
        const outcome = err.details.started === true ? 'failed' : 'refused';
        await d.audit.record({ action: 'handover', target, by, outcome, detail: err.message }).catch(() => {});
      }
      throw err;
    }
  };

  /**
   * The active agent said it is stopping (its heartbeat's `leaving`): a planned handover when another
   * agent can take the stream; else it stops on its own bound and fails over later.
   */
  readonly agentLeaving = (agentId: string): void => {
    const { d } = this;
    const snap = d.coordinator().getSnapshot();
    // not the active agent (it holds no lease and exits at once), or a switch runs already
    if (!d.leadership.leading || snap.context.assignment?.agentId !== agentId || !snap.matches('normal')) return;
    if (!this.standbys(agentId).length) {
      return d.refused('leaving-no-standby', { agentId }, 'the active agent is stopping but no other agent is healthy: it stops after its wait, and its stream fails over once another agent heartbeats');
    }
    d.log.warn({ agentId }, 'the active agent is stopping: handing its stream over to another agent (planned handover)');
    this.request({ by: `agent:${agentId} (stopping)` }).catch((err: Error) => d.log.warn({ agentId, err: err.message }, 'the planned handover of a stopping agent did not complete'));
  };

  /** healthy agents other than the active one */
  private standbys(active: string) {
    return this.d.registry.list().filter((a) => a.agentId !== active && (a.state === 'idle' || a.state === 'active'));
  }

  /** Why a handover cannot start now (throws), or the agent to prefer (null: the usual choice). */
  private check(to: string | null): string | null {
    const snap = this.d.coordinator().getSnapshot();
    const a = snap.context.assignment;
    if (!snap.matches('normal') || !a) {
      const phase = a && a.lock === 1 ? `switching (phase ${a.phase}, from ${a.previousAgent} to ${a.agentId})` : JSON.stringify(snap.value);
      throw new BatonError('no-active-agent', `no handover was started: the coordinator is ${phase}, and a handover starts only from normal, with an active agent; try again once baton status shows phase normal`, { state: snap.value });
    }
    const agents = this.d.registry.list();
    const roster = agents.map((x) => `${x.agentId} ${x.agentId === a.agentId && x.state !== 'active' ? `active but ${x.state}` : x.state}`).join(', ') || 'none';
    if (to === null) {
      if (this.standbys(a.agentId).length) return null;
      throw new BatonError('no-standby-agent', `no handover was started: a handover needs a second agent running and healthy, and there is none (agents: ${roster}); start one with \`baton agent --id ID\``, { agents });
    }
    const named = agents.find((x) => x.agentId === to);
    if (to === a.agentId) throw new BatonError('no-standby-agent', `no handover was started: agent ${to} is the active agent already; name another (agents: ${roster})`, { agents });
    if (!named) throw new BatonError('no-standby-agent', `no handover was started: agent ${to} is not known to this runtime (agents: ${roster}); start it and wait for its first heartbeat`, { agents });
    if (named.state !== 'idle') throw new BatonError('no-standby-agent', `no handover was started: agent ${to} is ${named.state}, it cannot take the stream (agents: ${roster})`, { agents });
    return to;
  }

  private async recorded(outcome: 'done' | 'already', by: string, s: SwitchOutcome): Promise<ActionResult> {
    const detail = describe(s);
    let entry: AuditEntry;
    try {
      entry = await this.d.audit.record({ action: 'handover', target: s.to, by, outcome, detail });
    } catch (err) {
      throw new BatonError('database-unavailable', `${detail}; but its audit row could not be written (${(err as Error).message}): the handover stands, do not repeat it`, { ...s }, { cause: err });
    }
    return { action: 'handover', target: s.to, outcome, detail, auditId: entry.id };
  }
}

/** What the operator reads: where the stream went, how long it took, and whether the old agent gave its lease back. */
function describe(s: SwitchOutcome): string {
  const moved = `the stream moved from ${s.from} to ${s.to} (epoch ${s.epoch})${s.ms === null ? '' : ` in ${s.ms} ms`}`;
  if (s.released === true) return `${moved}: ${s.from} finished the requests on the wire and gave its lease back`;
  if (s.released === false) return `${moved}, as after a failure: ${s.from} did not give its lease back (${s.why}), so it was fenced and its lease waited out`;
  return moved;
}
