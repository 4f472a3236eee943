// The real services the integration tests use, and throw-away databases and namespaces on them.
import { randomBytes } from 'node:crypto';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/tools/admin.ts';
import { fromEnv, runtimeDefaults } from '../../src/config.ts';

const env = fromEnv();
export const AMQP_URL = env.amqpUrl ?? runtimeDefaults.amqpUrl;
export const DATABASE_URL = env.databaseUrl ?? runtimeDefaults.databaseUrl;

const tag = () => randomBytes(4).toString('hex');

/** A database URL of its own for one test (the store creates it); `drop()` removes it. */
export function freshDatabase(): { url: string; drop(): Promise<void> } {
  const url = withDatabase(DATABASE_URL, `baton_t_${tag()}`);
  return { url, drop: () => dropDatabase(url) };
}

/** A queue/exchange prefix of its own for one test; `drop(agentIds)` deletes what it made. */
export function freshNamespace(): { namespace: string; drop(agentIds?: string[]): Promise<void> } {
  const namespace = `t-${tag()}`;
  return { namespace, drop: (agentIds = []) => deleteNamespace(AMQP_URL, namespace, agentIds) };
}

/** Resolves when `check()` holds, re-checking on each `emitter` event; rejects after `ms`. */
export function until(emitter: { on(e: string, l: () => void): unknown; off(e: string, l: () => void): unknown }, event: string, check: () => boolean, ms = 30_000, what = 'condition'): Promise<void> {
  if (check()) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(event, on);
      reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
    }, ms);
    const on = () => {
      if (!check()) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve();
    };
    emitter.on(event, on);
  });
}
