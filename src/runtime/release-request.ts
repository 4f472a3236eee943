/**
 * The runtime's half of a planned handover's release (the coordinator's `switching.releasing`):
 * asks the old agent to give its lease back with a release request on the control channel, sealed
 * with that agent's key like a grant, naming the agent process the lease was granted to and the
 * epoch it holds. Sent at once and again every REPEAT_MS until the coordinator stops asking (the
 * agent answered with its `released` receipt, or the coordinator gave up and fences it): the
 * control channel is fire-and-forget and may lose one.
 */
import type { Logger } from 'pino';
import { fromCallback, type EventObject } from 'xstate';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import { BatonError } from '../errors.ts';
import type { Broker, Clock } from '../ports.ts';
import type { ReleaseRequest } from '../side-channel.ts';
import { seal } from '../trust.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { LeaseGranter } from './lease-granter.ts';

/** ms between two requests while unanswered */
export const REPEAT_MS = 250;

export interface ReleaseRequestDeps {
  broker: Pick<Broker, 'publishEvent'>;
  clock: Clock;
  logger: Logger;
  keyOf(agentId: string): Buffer;
  granter: Pick<LeaseGranter, 'incarnationGranted' | 'switchingFrom'>;
  registry: Pick<AgentRegistry, 'incarnation'>;
  /** how long a request may wait in the broker before it is dropped (a lease's duration) */
  ttlMs: number;
}

/** The coordinator's `askRelease`: runs while the coordinator waits for the answer. */
export function askRelease(d: ReleaseRequestDeps) {
  return fromCallback<EventObject, { assignment: Assignment }>(({ input }) => {
    const agentId = input.assignment.previousAgent;
    if (!agentId) throw new BatonError('no-active-agent', 'the switch names no old agent: nothing to ask for a lease back; it is fenced instead');
    // the switch raised the epoch by one: the old agent holds the one below
    const epoch = input.assignment.epoch - 1;
    // the process this runtime granted the lease to; else (granted before this term) the one it hears now
    const incarnation = d.granter.incarnationGranted(agentId) ?? d.registry.incarnation(agentId);
    if (!incarnation) throw new BatonError('no-active-agent', `agent ${agentId} was never heard by this runtime: it cannot be asked for its lease back; it is fenced instead`);
    // its lease is renewed no more (it was, while it caught up): it gives it back, or it lapses and is fenced
    d.granter.switchingFrom(agentId);
    const request: ReleaseRequest = { type: 'release', agentId, incarnation, epoch };
    const sealed = seal(d.keyOf(agentId), 'control', agentId, request);
    d.logger.info({ agentId, incarnation, epoch, switchId: input.assignment.switchId }, 'planned handover: asking the old agent to finish what is on the wire and give its lease back');
    let timer: { cancel(): void } | null = null;
    let asking = true;
    const send = () => {
      if (!asking) return;
      d.broker.publishEvent('control', sealed, { key: agentId, ttlMs: d.ttlMs }).catch((err: Error) => d.logger.warn({ agentId, err: err.message }, 'could not send the release request; sending it again shortly'));
      timer = d.clock.setTimeout(send, REPEAT_MS);
    };
    send();
    return () => {
      asking = false;
      timer?.cancel();
    };
  });
}
