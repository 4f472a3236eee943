/**
 * Lease grants as the agent hears them on its control channel: taken only when sealed with its own
 * key (for this agent) and valid for its lease (lease.ts: this process, one of its own heartbeats,
 * not stale); a grant taken is handed on with its watermarks and line orders (the newest grant taken
 * is the one that stands: an older one, read late, is refused by the lease).
 */
import type { Logger } from 'pino';
import { limitedWarn } from '../log-limit.ts';
import type { Broker, Clock } from '../ports.ts';
import { parseGrant, type LeaseGrant } from '../side-channel.ts';
import { unseal } from '../trust.ts';
import type { Lease } from './lease.ts';

export interface GrantOptions {
  agentId: string;
  agentKey: Buffer;
  broker: Pick<Broker, 'subscribeEvents'>;
  clock: Clock;
  log: Logger;
  lease: Pick<Lease, 'grant'>;
  /** a grant the lease took */
  granted(g: LeaseGrant): void;
}

export async function listenForGrants(o: GrantOptions): Promise<void> {
  const refused = limitedWarn(o.clock, o.log);
  await o.broker.subscribeEvents(
    'control',
    (p) => {
      const sealed = unseal((id) => (id === o.agentId ? o.agentKey : null), 'control', p);
      if ('invalid' in sealed) return refused('grant-unauthenticated', { why: sealed.invalid }, 'refused a lease grant the runtime did not sign for this agent');
      const g = parseGrant(sealed.event);
      if (!g || g.agentId !== o.agentId || !o.lease.grant(g)) return;
      o.granted(g);
    },
    o.agentId,
  );
}
