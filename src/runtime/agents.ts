/**
 * The agents as the runtime hears them: the registry (agent-registry.ts) wired to the log, the
 * events and the coordinator; the lease granter (lease-granter.ts) wired to the keys, the ledger's
 * watermarks and the epoch holders; the heartbeat handler, where the trust boundary keeps out what
 * no agent of this deployment sent; and the periodic probe of the active agent's queue consumer.
 */
import type { InspectionEvent } from 'xstate';
import type { AgentStore, Broker } from '../ports.ts';
import { parseHeartbeat, type LaneReport } from '../side-channel.ts';
import { seal, unseal } from '../trust.ts';
import { AgentRegistry } from './agent-registry.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';
import type { Emit } from './events.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { DeviceNotes } from './devices.ts';
import type { EpochHolders } from './epoch-holders.ts';
import { LeaseGranter } from './lease-granter.ts';
import type { LineOrders } from './line-orders.ts';
import type { RuntimeSetup } from './options.ts';

/** how long an agent may take from a lease grant to consuming its queue again, ms */
const GRANT_TO_CONSUME_MS = 500;

type Refused = (kind: string, fields: Record<string, unknown>, msg: string) => void;

export function createAgentRegistry(
  d: Pick<RuntimeSetup, 'cfg' | 'clock' | 'log' | 'queueOf'> & {
    store: Pick<AgentStore, 'upsertAgent'>;
    inspect: (e: InspectionEvent) => void;
    emit: Emit;
    granter: Pick<LeaseGranter, 'forget'>;
    coordinator(): Pick<CoordinatorActor, 'send' | 'getSnapshot'>;
  },
): AgentRegistry {
  const { cfg, log, emit } = d;
  return new AgentRegistry({
    timings: { heartbeatTimeout: cfg.heartbeatTimeout, hungTimeout: cfg.hungTimeout, consumerGrace: cfg.consumerGrace },
    clock: d.clock,
    store: d.store,
    logger: log,
    inspect: d.inspect,
    onEmitted: (e) => {
      const level = e.type === 'agent.alive' ? 'info' : 'warn';
      log[level]({ agentId: e.agentId, ...('reason' in e ? { reason: e.reason } : {}), ...('why' in e ? { why: e.why } : {}) }, e.type);
      emit(e.type, e as never);
      if (e.type === 'agent.alive') d.coordinator().send({ type: 'agent.healthy', agentId: e.agentId });
      if (e.type === 'agent.dead') d.coordinator().send({ type: 'agent.dead', agentId: e.agentId, reason: e.reason });
    },
    onRegistered: (agentId) => {
      log.info({ agentId }, 'agent registered');
      emit('agent.registered', { agentId });
      d.coordinator().send({ type: 'agent.healthy', agentId });
    },
    queueOf: d.queueOf,
    maxAgents: cfg.maxAgents,
    forgetAfter: cfg.forgetAgentAfter,
    pinned: (): Array<string | null> => {
      const a = d.coordinator().getSnapshot().context.assignment;
      return [a?.agentId ?? null, a?.previousAgent ?? null];
    },
    onForgotten: (agentId) => d.granter.forget(agentId),
  });
}

/** The lease granter: grants sealed with the agent's key, carrying the ledger's watermarks and the line orders; who each epoch went to noted in `holders`. */
export function createLeaseGranter(
  d: Pick<RuntimeSetup, 'cfg' | 'clock' | 'keyOf' | 'allFence'> & { broker: Pick<Broker, 'publishEvent'>; holders: Pick<EpochHolders, 'record'>; ledger: Pick<AppliedLedger, 'watermarks'>; leading(): boolean; lines?: Pick<LineOrders, 'lines'> },
): LeaseGranter {
  const { keyOf, holders } = d;
  const granter = new LeaseGranter({
    broker: d.broker,
    clock: d.clock,
    durationMs: d.cfg.leaseDuration,
    waitForOldLease: !d.allFence,
    mayGrant: () => d.leading(),
    seal: (g) => seal(keyOf(g.agentId), 'control', g.agentId, g),
    onTarget: (t) => holders.record(t.epoch, t.agentId),
  });
  granter.watermarks = () => d.ledger.watermarks();
  if (d.lines) granter.lines = () => d.lines!.lines();
  return granter;
}

/** Takes a heartbeat from the side channel: only an authenticated, fresh one reaches the registry, and the lease granter while leading. */
export function heartbeatHandler(
  d: Pick<RuntimeSetup, 'cfg' | 'log' | 'keyOf'> & {
    refused: Refused;
    registry: Pick<AgentRegistry, 'heartbeat' | 'lanes'>;
    granter: Pick<LeaseGranter, 'onHeartbeat'>;
    leading(): boolean;
    /** tells of a change in the active agent's report on a line (`device.line`) */
    lineChanged?: (deviceId: string, agentId: string, line: LaneReport | null) => void;
    activeAgent?: () => string | null;
    /** the per-device view notes the refusals and retries a heartbeat reports */
    notes?: Pick<DeviceNotes, 'heard'>;
    /** an agent said it is stopping (`leaving`): the active one is handed over (handover.ts) */
    leaving?: (agentId: string) => void;
    /** the active agent's lane reports, at each of its heartbeats while leading (the lines it blocked itself: line-receipts.ts) */
    activeLanes?: (agentId: string, lanes: readonly LaneReport[]) => void;
    /** whose lane reports go to `activeLanes` (default: the active agent's) */
    reportsLines?: (agentId: string) => boolean;
  },
): (p: unknown) => void {
  const { log, refused, registry } = d;
  return (p) => {
    // only an agent of this deployment registers: a heartbeat is sealed with its own key
    const sealed = unseal(d.keyOf, 'heartbeats', p);
    if ('invalid' in sealed) return refused('heartbeat-unauthenticated', { why: sealed.invalid }, 'refused a heartbeat that no agent of this deployment signed');
    const h = parseHeartbeat(sealed.event);
    if ('invalid' in h) return log.warn({ why: h.invalid }, 'ignored a malformed heartbeat');
    const before = registry.lanes(h.agentId);
    const verdict = registry.heartbeat(h);
    if (verdict === 'replay') return refused('heartbeat-replay', { agentId: h.agentId, incarnation: h.incarnation, beat: h.beat }, 'ignored a replayed heartbeat (its beat is not above the last one heard from that agent process)');
    if (verdict === 'full') return refused('heartbeat-full', { agentId: h.agentId, maxAgents: d.cfg.maxAgents }, 'ignored the heartbeat of a new agent: maxAgents agents are known and none is dead to make room');
    d.notes?.heard(h.lanes);
    if (d.lineChanged && d.activeAgent?.() === h.agentId) for (const [deviceId, line] of changedLines(before, h.lanes ?? [])) d.lineChanged(deviceId, h.agentId, line);
    if (h.lanes && (d.reportsLines ? d.reportsLines(h.agentId) : d.activeAgent?.() === h.agentId) && d.leading()) d.activeLanes?.(h.agentId, h.lanes);
    if (d.leading()) d.granter.onHeartbeat(h);
    if (h.leaving && d.leading()) d.leaving?.(h.agentId);
  };
}

/** The lines whose report differs (another state or seq, or none where there was one): the new report, or null when it flows again. */
export function changedLines(before: readonly LaneReport[], after: readonly LaneReport[]): Array<[string, LaneReport | null]> {
  const key = (l: LaneReport | undefined) => (l ? `${l.state}:${l.seq}` : '');
  const was = new Map(before.map((l) => [l.deviceId, l]));
  const now = new Map(after.map((l) => [l.deviceId, l]));
  const out: Array<[string, LaneReport | null]> = [];
  for (const [deviceId, l] of now) if (key(was.get(deviceId)) !== key(l)) out.push([deviceId, l]);
  for (const deviceId of was.keys()) if (!now.has(deviceId)) out.push([deviceId, null]);
  return out;
}

/** The periodic probe: the active agent's queue consumer, judged by its agent actor. */
export function probeActiveAgent(
  d: Pick<RuntimeSetup, 'queueOf'> & {
    coordinator(): Pick<CoordinatorActor, 'getSnapshot'>;
    leading(): boolean;
    granter: Pick<LeaseGranter, 'grantedFor'>;
    broker: Pick<Broker, 'queueInfo'>;
    registry: Pick<AgentRegistry, 'send'>;
  },
): () => Promise<void> {
  return async () => {
    const a = d.coordinator().getSnapshot().context.assignment;
    if (!a || !d.leading()) return;
    // an agent that gave its queue back when its lease lapsed (a leader change, a pause) consumes
    // again on its next grant: judge the consumer only once it had one and a moment to attach;
    // until then a dead agent is found by its missing heartbeats
    const granted = d.granter.grantedFor();
    if (granted === null || granted < GRANT_TO_CONSUME_MS) return;
    const info = await d.broker.queueInfo(d.queueOf(a.agentId));
    if (info) d.registry.send(a.agentId, { type: 'agent.probe', consumers: info.consumers });
  };
}
