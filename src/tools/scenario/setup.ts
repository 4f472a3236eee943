/**
 * Where a scenario runs: a namespace, a database and a deployment secret of its own (removed by
 * `cleanUp`), and the check that the services answer before any process starts.
 */
import type { Logger } from 'pino';
import { createAmqpBroker } from '../../adapters/amqp/broker.ts';
import { createOrmStore } from '../../adapters/orm/store.ts';
import { systemClock } from '../../clock.ts';
import { localManagementUrl, runtimeDefaults } from '../../config.ts';
import { BatonError } from '../../errors.ts';
import { agentCredential, newSecret } from '../../trust.ts';
import { withDatabase } from '../admin.ts';
import type { Scenario } from './schema.ts';
import type { RunOptions } from './types.ts';

export interface RunPlace {
  amqpUrl: string;
  databaseUrl: string;
  managementUrl: string | undefined;
  namespace: string;
  /** a deployment secret of this run only: runtimes get it, each agent its own credential */
  secret: string;
  keyOf(agentId: string): string;
}

export function placeOf(s: Scenario, o: RunOptions): RunPlace {
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const secret = newSecret();
  return {
    amqpUrl: o.amqpUrl ?? runtimeDefaults.amqpUrl,
    databaseUrl: withDatabase(o.databaseUrl ?? runtimeDefaults.databaseUrl, `baton_scn_${tag.replace(/-/g, '_')}`),
    managementUrl: s.managementApi ? (o.managementUrl ?? localManagementUrl) : undefined,
    namespace: `baton-scn-${tag}`,
    secret,
    keyOf: (id) => agentCredential(secret, id),
  };
}

/** The services first: a clear message (and the offline alternative) instead of a child process failing. */
export async function preflight(place: RunPlace, logger: Logger): Promise<void> {
  const hint = ' (to rehearse failures without the services, run `npx baton sim`)';
  const broker = createAmqpBroker({ url: place.amqpUrl, namespace: 'baton-preflight', queueType: 'classic', maxUnconfirmed: 1, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger });
  try {
    await broker.start();
  } catch (err) {
    throw new BatonError((err as BatonError).code ?? 'broker-unavailable', (err as Error).message + hint);
  } finally {
    await broker.close().catch(() => {});
  }
  try {
    const store = await createOrmStore({ databaseUrl: place.databaseUrl, logger });
    await store.close();
  } catch (err) {
    throw new BatonError((err as BatonError).code ?? 'database-unavailable', (err as Error).message + hint);
  }
}
