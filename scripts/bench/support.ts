// Helpers shared by the benchmarks: sizes, messages, bounded waits, device counts, results.
import amqp from 'amqplib';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import type { AppliedEntry } from '../../src/devices/model.ts';
import type { DeviceSimulator } from '../../src/devices/simulator.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/tools/admin.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { agentCredential, newSecret } from '../../src/trust.ts';
import { measured, type BenchContext, type BenchResult } from './harness.ts';

export const sizeOf = (ctx: BenchContext, tiny: number, full: number) => (ctx.size === 'tiny' ? tiny : full);
export const tag = () => randomBytes(3).toString('hex');
/** the deployment secret of this benchmark run: runtimes get it, agents their credential (`benchKey`) */
export const benchSecret = newSecret();
export const benchKey = (agentId: string) => agentCredential(benchSecret, agentId);
export const msg = (deviceId: string, i: number) => ({ deviceId, method: 'PUT' as const, path: `/policies/p${i}`, body: { i } });

/** Rejects after `ms`: a benchmark never hangs. */
/** Sends `messages` at 1,000/s (message i at i ms), calling `change` just before message `at`; resolves once every send settled. */
export async function pace(messages: number, at: number, send: (i: number) => Promise<unknown>, change: () => void): Promise<void> {
  const t0 = performance.now();
  const all: Promise<unknown>[] = [];
  for (let i = 0; i < messages; i++) {
    const wait = t0 + i - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    if (i === at) change();
    all.push(send(i));
  }
  await Promise.all(all);
}

export const bounded = (ms: number, what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref());

/** Resolves once the simulators together applied `n` writes. */
export function appliedTotal(sims: DeviceSimulator[], n: number): Promise<void> {
  const count = () => sims.reduce((t, s) => t + s.applied.length, 0);
  if (count() >= n) return Promise.resolve();
  return new Promise((resolve) => {
    const on = () => {
      if (count() < n) return;
      for (const s of sims) s.events.off('applied', on);
      resolve();
    };
    for (const s of sims) s.events.on('applied', on);
  });
}

export function result(name: string, label: string, base: number[], ours: number[], unit: string, target: string, met: (b: number, o: number) => boolean, notes: string[] = []): BenchResult {
  const baseline = { ...measured(base, unit), label };
  const baton = measured(ours, unit);
  const ratio = baseline.median === 0 ? 0 : baton.median / baseline.median;
  return { name, baseline, baton, ratio, target, met: met(baseline.median, baton.median), notes };
}

/** `count` device simulators in one process of their own (device-process.ts): their URLs, the first one's applied log (with the device's own times), the writes all applied, and close. */
export async function deviceProcess(count = 1): Promise<{ url: string; urls: string[]; log(): Promise<AppliedEntry[]>; appliedCount(): Promise<number>; close(): Promise<void> }> {
  const script = fileURLToPath(new URL('./device-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script, String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const line = await Promise.race([
    new Promise<string>((resolve) => child.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim()))),
    exited.then(() => Promise.reject(new Error('the device process exited before it listened'))),
    bounded(30_000, 'the device process did not listen'),
  ]);
  const urls = line.split(' ');
  const pools = urls.map((u) => new Pool(u, { connections: 1 }));
  const logOf = async (pool: Pool) => {
    const r = await pool.request({ method: 'GET', path: '/_sim/log' });
    return ((await r.body.json()) as { applied: AppliedEntry[] }).applied;
  };
  const appliedCount = async () => (await Promise.all(pools.map(logOf))).reduce((t, l) => t + l.length, 0);
  const close = async () => (await Promise.all(pools.map((p) => p.close())), child.kill('SIGTERM'), await exited);
  return { url: urls[0]!, urls, log: () => logOf(pools[0]!), appliedCount, close };
}

/**
 * baton as the failover benchmarks run it: a runtime here (fresh namespace and database) over
 * `devices`, agent k1 as a process (started), k2 once `second()` is called (resolves when the runtime
 * heard it), and `close()`, which stops and removes all of it.
 */
export async function batonPair(ctx: BenchContext, devices: Array<{ id: string; url: string; fencesByEpoch: boolean }>) {
  const namespace = `bench-${tag()}`;
  const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
  const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace, managementUrl: ctx.managementUrl, secret: benchSecret });
  await runtime.start();
  const file = writeDevicesFile(devices);
  const spawnK = (id: string) => spawnAgent({ id, key: benchKey(id), devicesFile: file, amqpUrl: ctx.amqpUrl, namespace, logLevel: 'error' });
  const agents: ChildHandle[] = [spawnK('k1')];
  const second = () => {
    const heard = new Promise<void>((r) => runtime.on('agent.registered', (e) => e.agentId === 'k2' && r()));
    agents.push(spawnK('k2'));
    return heard;
  };
  const close = async () => {
    await runtime.stop();
    for (const a of agents) a.kill('SIGKILL');
    await Promise.all(agents.map((a) => a.exited));
    await deleteNamespace(ctx.amqpUrl, namespace, ['k1', 'k2']).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  };
  return { runtime, agents, second, close };
}

/** What the plain pipeline puts on its queue: the device's index and the message number. */
export const plainMessage = (d: number, i: number) => Buffer.from(JSON.stringify({ d, i }));

/** The plain pipeline's consumer: amqplib with `prefetch`, each message PUT to its device with undici (up to `connections` at once per device) and acked after the answer. */
export async function plainConsumer(amqpUrl: string, queue: string, deviceUrls: string[], o: { prefetch: number; connections: number }): Promise<{ close(): Promise<void> }> {
  const pools = deviceUrls.map((url) => new Pool(url, { connections: o.connections }));
  const conn = await amqp.connect(amqpUrl);
  const ch = await conn.createChannel();
  await ch.assertQueue(queue, { durable: true });
  await ch.prefetch(o.prefetch);
  await ch.consume(queue, (m) => {
    if (!m) return;
    const { d, i } = JSON.parse(m.content.toString()) as { d: number; i: number };
    void pools[d]!.request({ method: 'PUT', path: `/policies/p${i}`, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' } })
      .then((r) => r.body.dump())
      .then(() => ch.ack(m));
  });
  return {
    async close() {
      await ch.deleteQueue(queue);
      await conn.close();
      await Promise.all(pools.map((p) => p.close()));
    },
  };
}
