// Faults at the edges, against the real RabbitMQ and PostgreSQL: duplicate publishes on an agent
// queue, malformed, replayed or misdirected heartbeats and receipts, and credentials that must never
// show (the deployment secret and agent credentials among them). Forged traffic from a client
// without the secret: trust.int.test.ts.
import amqp from 'amqplib';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { createAmqpBroker } from '../../src/adapters/amqp/broker.ts';
import { systemClock } from '../../src/clock.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { silentLogger } from '../../src/logger.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { encodeMessage, wireHeaders } from '../../src/wire.ts';
import { captureLogs } from '../support/log-capture.ts';
import { TEST_SECRET, agentTrust, runtimeTrust, signedMessage, signedReceipt } from '../support/trust.ts';
import { AMQP_URL, freshDatabase, freshNamespace, until } from '../support/services.ts';
import { management, requireItem } from '../support/preflight.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

async function setup(o: { amqpUrl?: string; databaseUrl?: string; managementUrl?: string; inspector?: boolean } = {}) {
  const db = freshDatabase();
  const ns = freshNamespace();
  const sim = await startDeviceSimulator();
  const devices = [{ id: 'fw1', url: sim.url, fencesByEpoch: true }];
  const logs = captureLogs();
  cleanups.push(db.drop, () => ns.drop(['a1', 'a2']), () => sim.close());
  const runtime = createRuntime({ devices, amqpUrl: o.amqpUrl ?? AMQP_URL, databaseUrl: o.databaseUrl ?? db.url, namespace: ns.namespace, ...runtimeTrust, logger: logs.logger, ...(o.managementUrl ? { managementUrl: o.managementUrl } : {}), ...(o.inspector ? { inspector: { port: 0 } } : {}) });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  return { db, ns, sim, devices, logs, runtime };
}

const appliedCount = (sim: DeviceSimulator, n: number) => until(sim.events, 'applied', () => sim.applied.length >= n, 30_000, `${n} writes`);

/** Resolves once a log record's msg matches. */
function logLine(logs: { records(): Array<Record<string, unknown>> }, msg: RegExp, ms = 10_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = () => {
      const r = logs.records().find((x) => msg.test(String(x.msg)));
      if (r) return resolve(r);
      if (Date.now() - started > ms) return reject(new Error(`no log line matching ${msg} within ${ms} ms`));
      setTimeout(check, 20);
    };
    check();
  });
}

describe('faults at the edges (real services)', () => {
  it('a message published twice to the agent queue is applied once', async () => {
    const { runtime, sim, devices, ns } = await setup();
    const agent = await startAgent({ id: 'a1', devices, amqpUrl: AMQP_URL, namespace: ns.namespace, ...agentTrust('a1') });
    cleanups.push(() => agent.stop());
    await runtime.ready();
    const first = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: { v: 1 } });
    await runtime.applied(first);
    // the same message again, as a publisher retrying after a lost confirm would send it (signed: the runtime's own)
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    const wire = signedMessage({ deviceId: 'fw1', seq: first.seq, method: 'PUT' as const, path: '/policies/p1', body: { v: 1 } });
    ch.sendToQueue(agent.queue, encodeMessage(wire), { persistent: true, headers: wireHeaders(wire) });
    await ch.waitForConfirms();
    await conn.close();
    const second = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p2', body: { v: 2 } });
    await runtime.applied(second);
    await appliedCount(sim, 2);
    expect(sim.applied.map((e) => e.seq)).toEqual([first.seq, second.seq]);
  });

  it('unsigned, replayed and misdirected heartbeats and receipts are logged and change nothing', async () => {
    const { runtime, devices, ns, logs } = await setup();
    const agent = await startAgent({ id: 'a1', devices, amqpUrl: AMQP_URL, namespace: ns.namespace, ...agentTrust('a1') });
    cleanups.push(() => agent.stop());
    await runtime.ready();
    const d = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1' });
    await runtime.applied(d);
    const forger = createAmqpBroker({ url: AMQP_URL, namespace: ns.namespace, queueType: 'classic', maxUnconfirmed: 100, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger: silentLogger() });
    await forger.start();
    cleanups.push(() => forger.close());

    await forger.publishEvent('heartbeats', { type: 'heartbeat', agentId: 'a1' });
    expect(await logLine(logs, /refused a heartbeat that no agent of this deployment signed/)).toMatchObject({ why: 'unsigned (no body and mac)' });

    // a copy of a heartbeat a1's process sent (its beat no longer above the last one heard)
    const heard = await new Promise<Record<string, unknown>>((resolve) => void forger.subscribeEvents('heartbeats', (h) => resolve(h as Record<string, unknown>)));
    await forger.publishEvent('heartbeats', heard);
    expect(await logLine(logs, /ignored a replayed heartbeat/)).toMatchObject({ agentId: 'a1' });

    // receipts signed by agents of this deployment (the test holds the secret), each wrong in one way
    await forger.publishEvent('receipts', signedReceipt('a2', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'fw1', from: d.seq, to: d.seq }] }));
    expect(await logLine(logs, /refused a receipt from an agent that does not hold/)).toMatchObject({ agentId: 'a2', epoch: 1, holder: 'a1' });
    await forger.publishEvent('receipts', signedReceipt('a1', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'fw1', from: 1_000_000, to: 1_000_000 }] }));
    expect(await logLine(logs, /refused receipt seqs that were never handed out/)).toMatchObject({ agentId: 'a1', from: 1_000_000 });
    await forger.publishEvent('receipts', signedReceipt('a1', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'nosuch', from: 5, to: 5 }] }));
    expect(await logLine(logs, /ignored a receipt mark for a device not configured/)).toMatchObject({ deviceId: 'nosuch' });
    await forger.publishEvent('receipts', signedReceipt('a1', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'fw1', from: -3, to: 1 }] }));
    expect(await logLine(logs, /ignored a malformed receipt/)).toMatchObject({ why: 'applied receipt with a bad range' });

    const s = await runtime.status();
    expect(s.devices.find((x) => x.deviceId === 'fw1')?.watermark).toBe(d.seq);
    expect(s.agents.map((a) => a.agentId)).toEqual(['a1']);
    expect(s.agents[0]!.state).toBe('active');
  });

  it('credentials never reach logs, errors, status, the inspector or /metrics, through a whole switch', async () => {
    await requireItem(management);
    const secret = `S3cret-${randomBytes(6).toString('hex')}`;
    const user = `baton_t_${randomBytes(3).toString('hex')}`;
    const ctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe' });
    ctl('add_user', user, secret);
    cleanups.push(async () => ctl('delete_user', user));
    ctl('set_permissions', '-p', '/', user, '.*', '.*', '.*');
    ctl('set_user_tags', user, 'administrator');
    const amqpUrl = AMQP_URL.replace(/\/\/([^@/]*@)?/, `//${user}:${secret}@`);
    const pgSecret = `Pg-${secret}`;
    const db = freshDatabase();
    const databaseUrl = db.url.replace(/\/\/([^@/]*@)?/, (_m, auth: string | undefined) => `//${(auth ?? 'postgres@').replace(/(:[^@]*)?@$/, '')}:${pgSecret}@`);
    const managementUrl = `http://${user}:${secret}@127.0.0.1:15672`;
    const seen: string[] = [];

    cleanups.push(db.drop);
    const { runtime, devices, ns, logs } = await setup({ amqpUrl, databaseUrl, managementUrl, inspector: true });
    const devicesFile = writeDevicesFile(devices);
    const agents: ChildHandle[] = [];
    const spawnA = (id: string) => {
      const a = spawnAgent({ id, key: agentTrust(id).key, devicesFile, amqpUrl, namespace: ns.namespace, logLevel: 'debug' });
      agents.push(a);
      cleanups.push(async () => {
        a.kill('SIGKILL');
        await a.exited;
      });
      return a;
    };
    spawnA('a1');
    await runtime.ready();
    spawnA('a2');
    await new Promise<void>((r) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && r()));
    const done = runtime.once('switch.completed');
    agents[0]!.kill('SIGKILL');
    await done;
    const m = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1' });
    await runtime.applied(m);

    // errors that carry a URL: an unreachable database, a refused broker login
    for (const bad of [{ databaseUrl: databaseUrl.replace(/:5432/, ':1') }, { amqpUrl: amqpUrl.replace(secret, `${secret}-wrong`) }]) {
      const r = createRuntime({ devices: ['fw1'], amqpUrl, databaseUrl, namespace: ns.namespace, ...runtimeTrust, connectAttempts: 1, ...bad } as never);
      const err = (await r.start().then(() => null, (e: Error) => e))!;
      expect(err).toBeInstanceOf(Error);
      seen.push(err.message, JSON.stringify(err), String(err.stack));
    }
    const status = await runtime.status();
    seen.push(logs.text(), JSON.stringify(status));
    for (const path of ['/', '/api/state', '/api/machines', '/metrics']) {
      const res = await request(new URL(path, status.inspectorUrl!));
      expect(res.statusCode).toBe(200);
      seen.push(await res.body.text());
    }
    for (const a of agents) seen.push(a.stderr(), a.stdout());
    expect(logs.text()).toMatch(/old agent fenced/); // the management API was used, with its password
    // nor the deployment secret, nor any part of an agent's credential
    const keys = ['a1', 'a2'].flatMap((id) => agentTrust(id).key.split(':').slice(2));
    for (const text of seen) {
      expect(text).not.toContain(secret);
      expect(text).not.toContain(pgSecret);
      expect(text).not.toContain(TEST_SECRET);
      for (const k of keys) expect(text).not.toContain(k);
    }
  });
});
