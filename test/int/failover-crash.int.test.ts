// The runtime killed (SIGKILL) in each phase of a switch, then restarted: it resumes that phase and
// comes back to normal with nothing lost.
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { createOrmStore } from '../../src/adapters/orm/store.ts';
import { silentLogger } from '../../src/logger.ts';
import { AMQP_URL } from '../support/services.ts';
import { awaitAndCheck, startCluster, type Cluster } from '../support/cluster.ts';
import { TEST_SECRET } from '../support/trust.ts';

let cluster: Cluster | null = null;
afterEach(async () => {
  await cluster?.dispose();
  cluster = null;
});

function runtimeChild(c: Cluster, crashAt: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/runtime-child.ts'], {
    env: {
      ...process.env,
      BATON_AMQP_URL: AMQP_URL,
      BATON_DATABASE_URL: c.db.url,
      BATON_NAMESPACE: c.namespace,
      BATON_SECRET: TEST_SECRET,
      BATON_TEST_DEVICES: JSON.stringify(c.devices.map((d) => ({ id: d.id, fencesByEpoch: true }))),
      BATON_TEST_CRASH_AT: crashAt,
      BATON_TEST_MESSAGES: '3000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const exited = new Promise<string>((resolve) => child.on('exit', (code, signal) => resolve(String(signal ?? code))));
  const waitFor = (text: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => out.includes(text) && (child.stdout.off('data', check), resolve());
      child.stdout.on('data', check);
      check();
      void exited.then(() => (out.includes(text) ? resolve() : reject(new Error(`runtime exited before "${text}": ${err.slice(-2000)}`))));
    });
  const accepted = () => {
    const seqs = new Map<string, number[]>(c.devices.map((d) => [d.id, []]));
    for (const m of out.matchAll(/^accepted (\S+) (\d+)$/gm)) seqs.get(m[1]!)!.push(Number(m[2]));
    return seqs;
  };
  const active = () => out.match(/^ready (\S+)$/m)?.[1];
  return { child, exited, waitFor, accepted, active };
}

describe('runtime crash during a switch', () => {
  it.each(['switching', 'draining', 'replaying'])('killed in %s, restarted: resumes, back to normal, nothing lost', async (phase) => {
    const c = (cluster = await startCluster({ devices: 3 }));
    c.startAgent('a1');
    c.startAgent('a2');
    const first = runtimeChild(c, phase);
    await first.waitFor('ready');
    const [from, to] = first.active() === 'a1' ? ['a1', 'a2'] : ['a2', 'a1'];
    await first.waitFor('dispatched 1000');
    c.agents.get(from)!.kill('SIGKILL');
    expect(await first.exited).toBe('SIGKILL');
    expect(first.accepted().get('fw1')!.length).toBeGreaterThan(300);

    const store = await createOrmStore({ databaseUrl: c.db.url, logger: silentLogger() });
    const left = await store.getAssignment();
    await store.close();
    expect(left).toMatchObject({ phase, lock: 1, previousAgent: from, epoch: 2 });

    const runtime = c.runtime({ leaderTtl: 1000 });
    const completed = runtime.once('switch.completed');
    await runtime.start();
    const done = await completed;
    expect(done.assignment).toMatchObject({ agentId: to, phase: 'normal', lock: 0, epoch: 2 });
    const checks = await awaitAndCheck(c, first.accepted());
    for (const check of checks) expect(check).toMatchObject({ missing: 0, outOfOrder: 0, duplicates: 0 });
    expect((await runtime.status()).switches).toMatchObject([{ fromAgent: from, toAgent: to, phase: 'normal' }]);
  });
});
