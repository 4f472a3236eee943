// The trust boundary on the real broker, set up as README "Trust and security" tells operators: a
// deployment secret from `baton secret`, the agent's credential from `baton agent-key`, one RabbitMQ
// user for the runtime and one for the agent with exactly the permissions given there. Then a client
// with every broker permission but without the secret (the default user) publishes a forged
// heartbeat, receipt and grant and writes messages straight into the agent's queue: the runtime and
// the agent accept none of them, and every real message is applied in order under the real epoch.
import amqp from 'amqplib';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { createAmqpBroker } from '../../src/adapters/amqp/broker.ts';
import { agentPermissions, runtimePermissions, type Permissions } from '../../src/adapters/amqp/permissions.ts';
import { systemClock } from '../../src/clock.ts';
import { startDeviceSimulator } from '../../src/devices/simulator.ts';
import { silentLogger } from '../../src/logger.ts';
import { spawnBaton } from '../../src/tools/processes.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { type Dispatched, type RuntimeEvents } from '../../src/api.ts';
import { agentKey, newSecret, seal } from '../../src/trust.ts';
import { rabbitmq, requireItem } from '../support/preflight.ts';
import { AMQP_URL, freshDatabase, freshNamespace, until } from '../support/services.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

/** A logger whose lines can be awaited (an event per line, no polling). */
function awaitableLogs() {
  const lines: Array<Record<string, unknown>> = [];
  const events = new EventEmitter();
  const logger = pino({ level: 'debug' }, { write: (s: string) => void (lines.push(JSON.parse(s) as Record<string, unknown>), events.emit('line')) });
  const line = async (msg: RegExp) => {
    await until(events, 'line', () => lines.some((l) => msg.test(String(l.msg))), 15_000, `a log line matching ${msg}`);
    return lines.find((l) => msg.test(String(l.msg)))!;
  };
  return { logger, lines, line };
}

/** What `baton <args>` prints, as an operator runs it. */
async function baton(args: string[], env: Record<string, string> = {}): Promise<string> {
  const p = spawnBaton(args, env);
  const code = await p.exited;
  if (code !== 0) throw new Error(`baton ${args.join(' ')} exited ${code}: ${p.stderr()}`);
  return p.stdout().trim();
}

const ctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe' });

/** A RabbitMQ user with these permissions on `/`, removed afterwards; returns its AMQP URL. */
function brokerUser(name: string, p: Permissions): string {
  const password = randomBytes(12).toString('hex');
  ctl('add_user', name, password);
  cleanups.push(async () => ctl('delete_user', name));
  ctl('set_permissions', '-p', '/', name, p.configure, p.write, p.read);
  return AMQP_URL.replace(/\/\/([^@/]*@)?/, `//${name}:${password}@`);
}

describe('trust boundary (real broker, the README set-up)', () => {
  it('a client without the secret cannot make the runtime accept a heartbeat, receipt or grant in an agent\'s name, nor the agent accept a grant or a message', async () => {
    await requireItem(rabbitmq);
    const db = freshDatabase();
    const ns = freshNamespace();
    const sim = await startDeviceSimulator();
    cleanups.push(db.drop, () => ns.drop(['a1', 'a2']), () => sim.close());
    const tag = randomBytes(3).toString('hex');

    // the operator's set-up
    const secret = await baton(['secret']);
    const key = await baton(['agent-key', 'a1'], { BATON_SECRET: secret });
    const runtimeUrl = brokerUser(`baton_rt_${tag}`, runtimePermissions(ns.namespace));
    const agentUrl = brokerUser(`baton_a1_${tag}`, agentPermissions(ns.namespace, 'a1'));

    const runtimeLogs = awaitableLogs();
    const agentLogs = awaitableLogs();
    const runtime = createRuntime({ devices: [{ id: 'fw1', fencesByEpoch: true }], amqpUrl: runtimeUrl, databaseUrl: db.url, namespace: ns.namespace, secret, logger: runtimeLogs.logger });
    cleanups.push(() => runtime.stop());
    await runtime.start();
    const agent = await startAgent({ id: 'a1', devices: [{ id: 'fw1', url: sim.url, fencesByEpoch: true }], amqpUrl: agentUrl, namespace: ns.namespace, key }, { logger: agentLogs.logger });
    cleanups.push(() => agent.stop());
    const leases: number[] = [];
    agent.events.on('lease', (e: { epoch: number }) => leases.push(e.epoch));
    const deadLetters: Array<RuntimeEvents['message.dead-lettered']> = [];
    const twoDeadLetters = new Promise<void>((resolve) => runtime.on('message.dead-lettered', (e) => deadLetters.push(e) >= 2 && resolve()));
    await runtime.ready();
    const dispatch = async (n: number, from: number) => {
      const out: Dispatched[] = [];
      for (let i = from; i < from + n; i++) out.push(await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/policies/p${i}`, body: { i } }));
      await runtime.applied(out.at(-1)!, { timeoutMs: 20_000 });
      return out;
    };
    const first = await dispatch(3, 0);

    // the intruder: the broker's default user, every permission, no secret
    const forger = createAmqpBroker({ url: AMQP_URL, namespace: ns.namespace, queueType: 'classic', maxUnconfirmed: 100, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger: silentLogger() });
    await forger.start();
    cleanups.push(() => forger.close());
    const heard = await new Promise<Record<string, unknown>>((resolve) => void forger.subscribeEvents('heartbeats', (h) => resolve(h as Record<string, unknown>)));
    const real = JSON.parse(String(heard.body)) as { incarnation: string; beat: number };
    const guessed = agentKey(newSecret(), 'a1'); // a key made from some other secret

    // heartbeats: an agent whose "topic" is the receipts queue; a1's own, beat pushed far ahead
    await forger.publishEvent('heartbeats', { type: 'heartbeat', agentId: 'evil', topic: `${ns.namespace}.receipts`, host: 'h', pid: 1, sentAt: 0, mono: 1, beat: 1, incarnation: 'x' });
    await forger.publishEvent('heartbeats', seal(guessed, 'heartbeats', 'a1', { type: 'heartbeat', agentId: 'a1', host: 'h', pid: 1, sentAt: 0, beat: real.beat + 1e9, incarnation: real.incarnation }));
    // (refusals of one kind are logged once every 10 s, with a count: the second one is in the next line)
    expect(await runtimeLogs.line(/refused a heartbeat that no agent of this deployment signed/)).toMatchObject({ why: 'unsigned (no body and mac)' });
    // receipts: seq 10^12 applied, plain and sealed with a guessed key
    const claim = { type: 'applied', agentId: 'a1', epoch: 1, ranges: [{ deviceId: 'fw1', from: 1e12, to: 1e12 }] };
    await forger.publishEvent('receipts', claim);
    await forger.publishEvent('receipts', seal(guessed, 'receipts', 'a1', claim));
    await runtimeLogs.line(/refused a receipt that no agent of this deployment signed/);
    // grants: epoch 10^12 for a1's process, answering its latest heartbeat, plain and sealed with a guessed key
    const grant = { type: 'lease', agentId: 'a1', incarnation: real.incarnation, epoch: 1e12, beat: real.beat, echo: 0, durationMs: 1e9, watermarks: { fw1: 1e12 } };
    await forger.publishEvent('control', grant, { key: 'a1' });
    await forger.publishEvent('control', seal(guessed, 'control', 'a1', grant), { key: 'a1' });
    await agentLogs.line(/refused a lease grant the runtime did not sign/);
    // messages written straight into a1's queue: the next seq, and 2^53-1
    const last = first.at(-1)!;
    await forger.publish(agent.queue, { deviceId: 'fw1', seq: last.seq + 1, method: 'PUT', path: '/policies/evil', body: { owned: true } });
    await forger.publish(agent.queue, { deviceId: 'fw1', seq: Number.MAX_SAFE_INTEGER, method: 'PUT', path: '/policies/evil2', body: null });
    await twoDeadLetters;
    const later = await dispatch(3, 3);

    // nothing of it was accepted
    await until(sim.events, 'applied', () => sim.applied.length >= 6, 20_000, 'six writes');
    expect(sim.applied.map((e) => e.seq)).toEqual([...first, ...later].map((d) => d.seq));
    expect(sim.applied.map((e) => e.epoch)).toEqual(sim.applied.map(() => 1));
    expect(sim.applied.some((e) => e.path.includes('evil'))).toBe(false);
    expect(leases.length).toBeGreaterThan(0);
    expect(leases.every((e) => e === 1)).toBe(true);
    expect(deadLetters).toHaveLength(2);
    for (const d of deadLetters) {
      expect(d.reason).toMatch(/^unauthenticated/);
      expect(d.deviceId).toBe('?');
    }
    // the device applied them; the runtime counts them once their receipts arrive and stores the
    // watermark after that (status() reads the stored one): awaited on its event, not raced
    await runtime.applied(later.at(-1)!, { timeoutMs: 10_000 });
    const storedWatermark = async () => (await runtime.status()).devices.find((d) => d.deviceId === 'fw1')?.watermark;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the runtime did not store the watermark of the last seq within 10 s')), 10_000);
      const check = () => void storedWatermark().then((w) => w === later.at(-1)!.seq && (clearTimeout(timer), resolve()));
      runtime.on('watermarks.stored', check);
      check();
    });
    const status = await runtime.status();
    expect(status.agents.map((a) => a.agentId)).toEqual(['a1']);
    expect(status.assignment).toMatchObject({ agentId: 'a1', epoch: 1, topic: agent.queue });
    expect(status.switches).toEqual([]);
    expect(status.devices.find((d) => d.deviceId === 'fw1')?.watermark).toBe(later.at(-1)!.seq);

    // and the agent's broker user is held to its own queue
    await forger.assertAgentQueue('a2');
    const conn = await amqp.connect(agentUrl);
    cleanups.push(() => conn.close());
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    await expect(ch.consume(`${ns.namespace}.agent.a2`, () => {})).rejects.toThrow(/ACCESS_REFUSED|403/);
  });
});
