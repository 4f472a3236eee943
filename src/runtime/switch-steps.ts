/**
 * The coordinator's steps, built from the ports: election, the periodic check, and each step of
 * the switch (DESIGN.md §5). Each step persists its phase before it acts and can run twice
 * without harm, so a restarted runtime resumes it. Every queue name is derived from an agent id
 * and the namespace (`topology`), never read from a row or a message.
 *
 * One function per step (elect, check, begin, fence, choose, move, replay, complete; the move itself
 * is queue-drain.ts), each taking the `Kit` every step shares; `switchSteps` assembles them into the
 * coordinator's actors.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { fromPromise } from 'xstate';
import type { Assignment, BeginResult, CheckVerdict, Phase } from '../../machines/coordinator.machine.ts';
import { agentConnectionName, topology } from '../topology.ts';
import type { AgentRegistry } from './agent-registry.ts';
import { BatonError } from '../errors.ts';
import type { LeaseGranter } from './lease-granter.ts';
import { queueMover, type Drain } from './queue-drain.ts';
import type { AssignmentStore, Broker, Clock, LeaderTerm, ManagementApi } from '../ports.ts';

/** Called once a phase is persisted, before its step acts (tracing, fault injection in tests). */
export type PhaseHook = (phase: Phase, assignment: Assignment) => void | Promise<void>;

export interface SwitchStepDeps {
  store: () => AssignmentStore;
  broker: Broker;
  registry: AgentRegistry;
  granter: LeaseGranter;
  management: ManagementApi | null;
  clock: Clock;
  logger: Logger;
  namespace: string;
  hook?: PhaseHook;
  /** the leader term this runtime is in, or null: the waits and moves of a switch stop when it no
   * longer leads, and each write names the term its step began in (a late one changes nothing) */
  term: () => LeaderTerm | null;
}

type In = { input: { assignment: Assignment } };

/** What every step shares: its deps, the queue names, the phase hook and the two term checks. */
interface Kit {
  d: SwitchStepDeps;
  log: Logger;
  names: ReturnType<typeof topology>;
  hook(phase: Phase, a: Assignment): Promise<void>;
  stillLeading(): LeaderTerm;
  stillIn(term: LeaderTerm): void;
}

function kit(d: SwitchStepDeps): Kit {
  return {
    d,
    log: d.logger,
    names: topology(d.namespace),
    hook: async (phase: Phase, a: Assignment) => {
      await d.hook?.(phase, a);
    },
    /** Only the leader records or moves anything: a runtime that woke from a pause past its lease (its
     * timers may fire before it hears that it lost) or stopped leading mid-switch leaves it to the leader. */
    stillLeading: (): LeaderTerm => {
      const term = d.term();
      if (!term) throw new BatonError('not-leader', 'this runtime stopped leading during the switch: it leaves the old queue to the leading runtime');
      return term;
    },
    /** After a step's write answered: its side effects (the granter, the hooks) only if the term it began in still runs.
     * An answer that comes after the term ended (a slow connection, a pause) belongs to a step the coordinator left. */
    stillIn: (term: LeaderTerm) => {
      if (d.term()?.epoch !== term.epoch) throw new BatonError('not-leader', `leader term ${term.epoch} ended while this switch step waited for the database: the current term's coordinator carries on`);
    },
  };
}

export function switchSteps(d: SwitchStepDeps) {
  const k = kit(d);
  return {
    loadAssignment: fromPromise<Assignment | null, void>(() => d.store().getAssignment()),
    electAgent: electAgent(k),
    checkAgent: checkAgent(k),
    beginSwitch: beginSwitch(k),
    fenceAgent: fenceAgent(k),
    chooseCandidate: chooseCandidate(k),
    moveQueue: moveQueue(k, queueMover(k)),
    enterReplaying: enterReplaying(k),
    completeSwitch: completeSwitch(k),
  };
}

/** No agent recorded yet: the first healthy one becomes the active agent (compare-and-set). */
function electAgent({ d, log, stillLeading }: Kit) {
  return fromPromise<Assignment | null, void>(async () => {
    const term = stillLeading();
    const candidate = d.registry.healthy()[0];
    if (!candidate) return null;
    await d.broker.assertAgentQueue(candidate.agentId);
    const won = await d.store().recordFirstAgent({ agentId: candidate.agentId, topic: candidate.topic, host: candidate.host }, term);
    log.info({ agentId: won.agentId, epoch: won.epoch }, 'active agent recorded');
    return won;
  });
}

/** The periodic check: is the active agent healthy, still working, or to be switched away from? */
function checkAgent({ d, names }: Kit) {
  return fromPromise(async ({ input }: In): Promise<CheckVerdict> => {
    if (d.registry.healthy().some((a) => a.agentId === input.assignment.agentId)) return { verdict: 'healthy' };
    const fresh = await d.store().getAssignment();
    if (fresh?.lock === 1) return { verdict: 'working', why: 'switching' };
    const info = await d.broker.queueInfo(names.agentQueue(input.assignment.agentId));
    if (info && info.consumers > 0) return { verdict: 'working', why: 'has-consumer' };
    return { verdict: 'switch', why: 'not heartbeating and no consumer on its queue' };
  });
}

function beginSwitch({ d, log, hook, stillLeading, stillIn }: Kit) {
  return fromPromise(async ({ input }: { input: { assignment: Assignment; reason: string; planned: boolean } }): Promise<BeginResult> => {
    const term = stillLeading();
    const old = input.assignment;
    const switchId = `sw-${old.epoch + 1}-${randomBytes(3).toString('hex')}`;
    const started = await d.store().beginSwitch({ expectEpoch: old.epoch, switchId, reason: input.reason, term });
    if (!started) {
      log.warn({ agentId: old.agentId, epoch: old.epoch }, 'another runtime started this switch first; following it');
      return { kind: 'lost' };
    }
    stillIn(term);
    // a planned handover's old agent keeps its lease while it catches up (catch-up.ts), until asked for it or fenced
    if (!input.planned) d.granter.switchingFrom(old.agentId);
    log.warn({ switchId, from: old.agentId, epoch: started.epoch, reason: input.reason }, 'switch started: parking new messages, fencing the old agent');
    await hook('switching', started);
    return { kind: 'started', assignment: started };
  });
}

function fenceAgent({ d, log }: Kit) {
  return fromPromise(async ({ input }: In) => {
    const old = input.assignment.previousAgent!;
    d.granter.switchingFrom(old);
    if (!d.management) {
      log.warn({ agentId: old }, 'managementUrl is not set: cannot close the old agent\'s broker connection; its lease lapses and it gives its queue back, or the broker drops it after missed AMQP heartbeats');
      return;
    }
    const n = await d.management.closeConnections(agentConnectionName(d.namespace, old), 'fenced by baton').catch((err: Error) => {
      log.warn({ agentId: old, err: err.message }, "could not close the old agent's broker connection: the switch goes on; the move waits for its consumer to go and tries the close again each second");
      return null;
    });
    if (n !== null) log.warn({ agentId: old, connections: n }, 'old agent fenced: its broker connection closed');
  });
}

function chooseCandidate({ d, log, stillLeading }: Kit) {
  return fromPromise(async ({ input }: { input: { assignment: Assignment; prefer: string | null } }): Promise<Assignment | null> => {
    const term = stillLeading();
    const a = input.assignment;
    const healthy = d.registry.healthy();
    // The agent a planned handover names, while it is healthy. Else another agent. When there is
    // none, the old one once it is healthy again: it was declared dead, so only heartbeats after
    // that bring it back here; it gets a lease only under the new epoch, and its own queue stays
    // where it is (the move is a no-op)
    const preferred = input.prefer ? healthy.find((x) => x.agentId === input.prefer && x.agentId !== a.previousAgent) : undefined;
    if (input.prefer && !preferred) log.warn({ switchId: a.switchId, wanted: input.prefer }, 'the agent the handover names is not healthy now: choosing another');
    const candidate = preferred ?? healthy.find((x) => x.agentId !== a.previousAgent) ?? healthy.find((x) => x.agentId === a.previousAgent);
    if (!candidate) {
      log.error({ switchId: a.switchId, from: a.previousAgent }, 'no healthy agent to switch to: messages are parked in PostgreSQL until one heartbeats');
      return null;
    }
    await d.broker.assertAgentQueue(candidate.agentId);
    const chosen = await d.store().recordCandidate(a.switchId!, { agentId: candidate.agentId, topic: candidate.topic, host: candidate.host }, term);
    const again = chosen.agentId === a.previousAgent;
    log.warn({ switchId: a.switchId, to: chosen.agentId, epoch: chosen.epoch, leaseWaitMs: Math.round(d.granter.waitMs()) }, again ? 'no other healthy agent: the old agent, healthy again, chosen again under the new epoch' : 'new agent chosen');
    return chosen;
  });
}


function moveQueue({ d, log, names, hook, stillLeading, stillIn }: Kit, drain: Drain) {
  return fromPromise(async ({ input }: In): Promise<Assignment> => {
    const term = stillLeading();
    const a = input.assignment;
    const sw = a.switchId!;
    let cur = await d.store().setPhase(sw, 'draining', term);
    stillIn(term);
    await hook('draining', cur);
    const from = names.agentQueue(a.previousAgent!);
    const started = d.clock.monotonic();
    let [moved, via] = [0, 'none'];
    if (from === names.agentQueue(cur.agentId)) {
      // the old agent was chosen again: its queue is already the new one, and it consumes it
      // again once its lease under the new epoch arrives (waiting for no consumer would wait on it)
      log.warn({ switchId: sw, agentId: cur.agentId }, 'the old agent is the new one: its queue stays where it is');
    } else {
      ({ moved, via } = await drain(sw, from, a.previousAgent!, cur, term));
      const ms = Math.round(d.clock.monotonic() - started);
      log.warn({ switchId: sw, from, to: names.agentQueue(cur.agentId), moved, ms, via }, 'old queue moved to the new agent');
    }
    // granted once the old agent gave its queue back: its receipts (a refusal blocking a line) went out before
    (stillIn(term), d.granter.setTarget({ agentId: cur.agentId, epoch: cur.epoch }));
    // nothing moved: the phase written above says so already
    return moved === 0 ? cur : await d.store().setPhase(sw, 'draining', term, { moved });
  });
}

function enterReplaying({ d, hook, stillLeading, stillIn }: Kit) {
  return fromPromise(async ({ input }: In): Promise<Assignment> => {
    const term = stillLeading();
    const cur = await d.store().setPhase(input.assignment.switchId!, 'replaying', term);
    stillIn(term);
    await hook('replaying', cur);
    return cur;
  });
}

function completeSwitch({ d, hook, stillLeading, stillIn }: Kit) {
  return fromPromise(async ({ input }: { input: { assignment: Assignment; replayed: number } }): Promise<Assignment> => {
    const term = stillLeading();
    const cur = await d.store().completeSwitch(input.assignment.switchId!, input.replayed, term);
    stillIn(term);
    await hook('normal', cur);
    return cur;
  });
}
