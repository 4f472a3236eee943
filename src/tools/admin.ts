/** Housekeeping for throw-away namespaces and databases (demo, scenarios, tests): leave nothing behind. */
import amqp from 'amqplib';
import { MikroORM } from '@mikro-orm/postgresql';
import { topology } from '../topology.ts';

/** Deletes the queues and exchanges of a namespace (the agent queues named by `agentIds`). */
export async function deleteNamespace(amqpUrl: string, namespace: string, agentIds: readonly string[]): Promise<void> {
  const names = topology(namespace);
  const conn = await amqp.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    for (const q of [...agentIds.map(names.agentQueue), names.receipts]) await ch.deleteQueue(q);
    await ch.deleteExchange(names.heartbeats);
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** Drops the database a URL names (connecting to the `postgres` database to do it). */
export async function dropDatabase(databaseUrl: string): Promise<void> {
  const url = new URL(databaseUrl);
  const name = decodeURIComponent(url.pathname.slice(1));
  url.pathname = '/postgres';
  const orm = await MikroORM.init({ clientUrl: url.toString(), entities: [], discovery: { warnWhenNoEntities: false }, debug: false });
  try {
    await orm.em.getConnection().execute(`drop database if exists "${name.replace(/"/g, '""')}" with (force)`);
  } finally {
    await orm.close(true);
  }
}

/** A database URL like `base` but naming another database. */
export function withDatabase(databaseUrl: string, name: string): string {
  const url = new URL(databaseUrl);
  url.pathname = `/${name}`;
  return url.toString();
}
