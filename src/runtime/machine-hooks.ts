/**
 * What the runtime does when its machines emit: the dispatcher's quiesce and replay go to the
 * coordinator; the coordinator's transitions move the agents, the lease granter and the dispatcher,
 * and become the runtime's events, log lines and metrics.
 */
import type { Logger } from 'pino';
import type { AssignmentStore } from '../ports.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';
import type { DispatcherActor } from './dispatcher-provided.ts';
import type { Emit } from './events.ts';
import type { LeaseGranter } from './lease-granter.ts';
import type { Metrics } from './metrics.ts';

export function hookDispatcher(dispatcher: DispatcherActor, d: { coordinator(): Pick<CoordinatorActor, 'send'>; emit: Emit; onSending?: () => void }): void {
  dispatcher.on('dispatcher.quiesced', () => d.coordinator().send({ type: 'dispatcher.quiesced' }));
  dispatcher.on('dispatcher.replayed', ({ agentId, replayed }) => {
    d.emit('replay.completed', { agentId, replayed });
    // the dispatcher sends again: the lines being released get their own replays (line-release.ts)
    d.onSending?.();
    d.coordinator().send({ type: 'dispatcher.replayed', replayed });
  });
}

export interface CoordinatorHookDeps {
  registry: Pick<AgentRegistry, 'ensure' | 'healthy' | 'send'>;
  granter: Pick<LeaseGranter, 'setTarget' | 'returned'>;
  dispatcher: Pick<DispatcherActor, 'send'>;
  store: Pick<AssignmentStore, 'listSwitches'>;
  metrics: Metrics;
  queueOf(agentId: string): string;
  emit: Emit;
  log: Logger;
}

export function hookCoordinator(coordinator: CoordinatorActor, { registry, granter, dispatcher, store, metrics, queueOf, emit, log }: CoordinatorHookDeps): void {
  coordinator.on('coordinator.active', ({ assignment }) => {
    registry.ensure(assignment.agentId).actor.send({ type: 'agent.activate' });
    granter.setTarget({ agentId: assignment.agentId, epoch: assignment.epoch });
    // the queue comes from the agent's id, whatever the row says
    dispatcher.send({ type: 'dispatcher.resume', target: { agentId: assignment.agentId, queue: queueOf(assignment.agentId), epoch: assignment.epoch } });
    log.info({ agentId: assignment.agentId, epoch: assignment.epoch }, 'sending to the active agent');
    emit('coordinator.active', { assignment });
  });
  coordinator.on('coordinator.quiesce', () => dispatcher.send({ type: 'dispatcher.quiesce' }));
  // An agent registered while the coordinator was looking (electing, choosing) was not seen by the
  // look, and its `agent.healthy` came before the coordinator waited for one: told again now.
  const healthyWhileLooking = () => {
    const first = registry.healthy()[0];
    if (first) coordinator.send({ type: 'agent.healthy', agentId: first.agentId });
  };
  coordinator.on('coordinator.awaiting', () => {
    log.info('no healthy agent yet: messages are parked in PostgreSQL until one heartbeats');
    emit('coordinator.awaiting', {});
    healthyWhileLooking();
  });
  coordinator.on('coordinator.checked', ({ assignment, result }) => {
    if (result.verdict === 'switch') log.error({ agentId: assignment.agentId, why: result.why }, 'the active agent failed the periodic check: switching');
    emit('check.completed', { assignment, result });
  });
  coordinator.on('switch.started', (e) => {
    metrics.switches.inc({ reason: /periodic check/.test(e.reason) ? 'periodic-check' : /^planned handover/.test(e.reason) ? 'planned' : (/(killed|hung|no-consumer)$/.exec(e.reason)?.[1] ?? 'other') });
    registry.send(e.assignment.previousAgent!, { type: 'agent.deactivate' });
    emit('switch.started', { assignment: e.assignment, reason: e.reason });
  });
  // a planned handover: the old agent's lease is returned, or it is fenced as after a failure
  coordinator.on('handover.released', ({ assignment, agentId, incarnation }) => {
    granter.returned(agentId, incarnation);
    log.info({ switchId: assignment.switchId, agentId, epoch: assignment.epoch - 1 }, 'planned handover: the old agent finished what was on the wire and gave its lease back; the new agent needs no wait');
    emit('handover.released', { assignment, agentId });
  });
  coordinator.on('handover.fallback', ({ assignment, agentId, why }) => {
    log.warn({ switchId: assignment.switchId, agentId, why }, 'planned handover: the old agent did not give its lease back; fencing it as after a failure (the new agent waits out its lease)');
    emit('handover.fallback', { assignment, agentId, why });
  });
  coordinator.on('switch.phase', (e) => {
    emit('switch.phase', { assignment: e.assignment, phase: e.phase });
    if (e.phase === 'awaiting-candidate') healthyWhileLooking();
  });
  coordinator.on('switch.completed', ({ assignment }) => {
    log.warn({ switchId: assignment.switchId, agentId: assignment.agentId, epoch: assignment.epoch }, 'switch completed: back to normal');
    emit('switch.completed', { assignment });
    void store.listSwitches().then((all) => {
      const w = all.find((x) => x.id === assignment.switchId);
      const secs = (a: Date | null, b: Date | null) => (a && b ? (b.getTime() - a.getTime()) / 1000 : null);
      for (const [phase, v] of [['switching', secs(w?.startedAt ?? null, w?.drainingAt ?? null)], ['draining', secs(w?.drainingAt ?? null, w?.replayingAt ?? null)], ['replaying', secs(w?.replayingAt ?? null, w?.completedAt ?? null)]] as const) {
        if (v !== null) metrics.phaseSeconds.observe({ phase }, v);
      }
    }, () => {});
  });
}
