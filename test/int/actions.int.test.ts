// The operator's actions against the real RabbitMQ and PostgreSQL, a real agent process (onPermanent
// block) and simulated devices; every check reads the devices' own applied logs, not only a status
// field. Unblock retry (after the device is fixed) and skip, pause and resume, dead letters listed,
// resent and dropped, wait: each from the CLI against the runtime's inspector, and from the API.
import { userInfo } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import type { AuditEntry, DeadLetterView } from '../../src/api.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { spawnAgent, spawnBaton, writeDevicesFile } from '../../src/tools/processes.ts';
import { staleWrites } from '../../src/devices/checker.ts';
import { appliedSeqs, awaitAndCheck, blockedLine, dispatchLoad, startCluster } from '../support/cluster.ts';
import { captureLogs } from '../support/log-capture.ts';
import { AMQP_URL, freshDatabase, freshNamespace } from '../support/services.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

/** A runtime (inspector on), one agent with onPermanent block, and one simulated device per id. */
async function world(ids: string[]) {
  const db = freshDatabase();
  const ns = freshNamespace();
  const sims = new Map<string, DeviceSimulator>();
  for (const id of ids) sims.set(id, await startDeviceSimulator());
  cleanups.push(db.drop, () => ns.drop(['a1']), ...[...sims.values()].map((s) => () => s.close()));
  const devices = ids.map((id) => ({ id, url: sims.get(id)!.url, fencesByEpoch: true }));
  const runtime = createRuntime({ devices, amqpUrl: AMQP_URL, databaseUrl: db.url, namespace: ns.namespace, ...runtimeTrust, logger: captureLogs().logger, inspector: { port: 0 } });
  cleanups.push(() => runtime.stop());
  await runtime.start();
  const active = runtime.once('coordinator.active');
  const agent = spawnAgent({ id: 'a1', key: agentTrust('a1').key, devicesFile: writeDevicesFile(devices), amqpUrl: AMQP_URL, namespace: ns.namespace, extra: ['--on-permanent', 'block'], logLevel: 'warn' });
  cleanups.push(async () => {
    agent.kill('SIGTERM');
    await agent.exited;
  });
  await Promise.race([active, agent.exited.then((c) => Promise.reject(new Error(`agent exited ${c}: ${agent.stderr()}`)))]);
  const url = (await runtime.status()).inspectorUrl!;
  return { runtime, sims, url };
}

/** `baton ARGS --url URL`; resolves with its stdout, fails the test with its stderr on a non-zero exit */
async function cli(url: string, ...args: string[]): Promise<string> {
  const child = spawnBaton([...args, '--url', url]);
  const code = await child.exited;
  expect(code, `baton ${args.join(' ')}: ${child.stderr()}`).toBe(0);
  return child.stdout();
}

describe('operator actions (real services, a real agent process)', () => {
  it('unblock: retry after the device is fixed sends the refused seq first, then the rest in order; skip leaves it dead-lettered and goes on (CLI and API)', async () => {
    const { runtime, sims, url } = await world(['fw1', 'fw2']);
    const fw1 = sims.get('fw1')!;
    const fw2 = sims.get('fw2')!;
    const user = `cli:${userInfo().username}`;

    // fw1: a port under a vlan the device does not have: refused (422), the line blocks there
    const held1 = blockedLine(runtime, 'fw1');
    const a = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/10', body: { name: 'users' } });
    const refused = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/99/ports/1', body: { mode: 'access' } });
    const b = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/11', body: { name: 'voice' } });
    expect((await held1).line).toMatchObject({ state: 'blocked', seq: refused.seq });
    // once the runtime knows of the block, the device's new messages are kept in PostgreSQL
    const c = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/12', body: { name: 'guests' } });
    const view = (await runtime.devices()).find((d) => d.deviceId === 'fw1')!;
    expect(view).toMatchObject({ state: 'blocked', blocked: { seq: refused.seq, status: 422 } });
    expect(view.parked).toBeGreaterThanOrEqual(1);
    expect(appliedSeqs(fw1)).toEqual([a.seq]);

    // the operator fixes the device (creates the vlan by hand), then retries from the CLI
    const fix = await fetch(`${fw1.url}/vlans/99`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"name":"lab"}' });
    expect(fix.status).toBe(200);
    // its dead letter says `retried` once the retry's receipt is taken (applied() may resolve a moment before)
    const settled = new Promise((r) => runtime.on('dead-letter.resolved', (e) => e.deviceId === 'fw1' && e.seq === refused.seq && r(e)));
    expect(await cli(url, 'unblock', 'fw1', '--retry')).toMatch(/done/);
    await runtime.applied(c, { timeoutMs: 15_000 });
    await settled;
    await runtime.applied(refused, { timeoutMs: 5_000 });
    expect(appliedSeqs(fw1)).toEqual([a.seq, refused.seq, b.seq, c.seq]);
    const [retried] = await runtime.deadLetters({ deviceId: 'fw1' });
    expect(retried).toMatchObject({ seq: refused.seq, resolution: { kind: 'retried', by: expect.stringContaining(user) } });
    expect((await runtime.devices()).find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'idle', parked: 0, lag: 0 });

    // fw2: refused, blocked; skip it through the API
    const held2 = blockedLine(runtime, 'fw2');
    const d = await runtime.dispatch({ deviceId: 'fw2', method: 'PUT', path: '/zones/1/rules/9', body: {} });
    const e = await runtime.dispatch({ deviceId: 'fw2', method: 'PUT', path: '/zones/2', body: {} });
    await held2;
    const skipped = await runtime.unblock('fw2', { action: 'skip', by: 'test' });
    expect(skipped).toMatchObject({ action: 'unblock-skip', target: 'fw2', outcome: 'done' });
    await runtime.applied(e, { timeoutMs: 15_000 });
    expect(appliedSeqs(fw2)).toEqual([e.seq]);
    expect((await runtime.deadLetters({ deviceId: 'fw2' }))[0]).toMatchObject({ seq: d.seq, resolution: { kind: 'skipped', by: 'test' } });
    // idempotent: a repeat changes nothing and says so
    expect(await runtime.unblock('fw2', { action: 'skip', by: 'test' })).toMatchObject({ outcome: 'already' });

    const audit = JSON.parse(await cli(url, 'audit', '--json')) as AuditEntry[];
    expect(audit.map((x) => [x.action, x.target, x.outcome])).toEqual(expect.arrayContaining([['unblock-retry', 'fw1', 'done'], ['unblock-skip', 'fw2', 'done'], ['unblock-skip', 'fw2', 'already']]));
    expect(audit.find((x) => x.action === 'unblock-retry')!.by).toContain(user);
  });

  it('pause keeps a device\'s messages (others go on), resume sends them in order; wait resolves once all are applied (CLI)', async () => {
    const { runtime, sims, url } = await world(['sw1', 'sw2']);
    const sw1 = sims.get('sw1')!;
    const sw2 = sims.get('sw2')!;
    const first = await runtime.dispatch({ deviceId: 'sw1', method: 'PUT', path: '/vlans/1', body: {} });
    await runtime.applied(first, { timeoutMs: 15_000 });
    expect(await cli(url, 'pause', 'sw1')).toMatch(/done/);
    expect(await cli(url, 'pause', 'sw1')).toMatch(/already/);
    const kept = [];
    for (let i = 2; i <= 6; i++) kept.push(await runtime.dispatch({ deviceId: 'sw1', method: 'PUT', path: `/vlans/${i}`, body: {} }));
    const other = await runtime.dispatch({ deviceId: 'sw2', method: 'PUT', path: '/vlans/1', body: {} });
    await cli(url, 'wait', '--device', 'sw2', '--timeout', '15000');
    await runtime.applied(other, { timeoutMs: 1000 });
    // sw2 went on; sw1 got nothing while paused: its messages are parked
    expect(appliedSeqs(sw2)).toEqual([other.seq]);
    expect(appliedSeqs(sw1)).toEqual([first.seq]);
    expect((await runtime.devices()).find((d) => d.deviceId === 'sw1')).toMatchObject({ state: 'paused', parked: 5 });

    expect(await cli(url, 'resume', 'sw1')).toMatch(/done/);
    await cli(url, 'wait', '--timeout', '15000');
    expect(appliedSeqs(sw1)).toEqual([first.seq, ...kept.map((k) => k.seq)]);
    expect((await runtime.devices()).find((d) => d.deviceId === 'sw1')).toMatchObject({ state: 'idle', parked: 0 });
  });

  it('dead letters: listed and shown with the device\'s answer, resent at the end of the line with a new seq, dropped with a reason (CLI)', async () => {
    const { runtime, sims, url } = await world(['r1']);
    const r1 = sims.get('r1')!;
    // a device run with skip would go on; with block, skip it to go on, then resend once fixed
    const held = blockedLine(runtime, 'r1');
    const bad = await runtime.dispatch({ deviceId: 'r1', method: 'PUT', path: '/vrfs/7/routes/1', body: { via: '10.0.0.1' } });
    const bad2Dispatch = runtime.dispatch({ deviceId: 'r1', method: 'PATCH', path: '/vrfs/8', body: { rd: '1:8' } });
    await held;
    await runtime.unblock('r1', { action: 'skip', by: 'test' });
    const bad2 = await bad2Dispatch;
    // PATCH of a missing vrf: refused (404), blocks again; skip it too
    await new Promise<void>((resolve) => runtime.on('message.dead-lettered', (e) => e.seq === bad2.seq && resolve()));
    await runtime.unblock('r1', { action: 'skip', by: 'test' });

    const listed = JSON.parse(await cli(url, 'dead-letters', '--device', 'r1', '--json')) as DeadLetterView[];
    expect(listed.map((x) => x.seq)).toEqual([bad2.seq, bad.seq]);
    const shown = await cli(url, 'dead-letters', 'show', String(listed[1]!.id));
    expect(shown).toContain('/vrfs/7/routes/1');
    expect(shown).toContain('422');

    // fix the device, resend the first: a new seq at the end of r1's line, applied
    await fetch(`${r1.url}/vrfs/7`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    const resent = await runtime.resendDeadLetter(listed[1]!.id, { by: 'test' });
    expect(resent.seq).toBeGreaterThan(bad2.seq);
    await runtime.applied({ deviceId: 'r1', seq: resent.seq }, { timeoutMs: 15_000 });
    expect(appliedSeqs(r1)).toEqual([resent.seq]);
    expect(r1.applied.at(-1)).toMatchObject({ method: 'PUT', path: '/vrfs/7/routes/1' });
    // a repeat answers the same seq and sends nothing more
    expect(await runtime.resendDeadLetter(listed[1]!.id, { by: 'test' })).toMatchObject({ outcome: 'already', seq: resent.seq });

    expect(await cli(url, 'dead-letters', 'drop', String(listed[0]!.id), '--reason', 'vrf 8 was decommissioned')).toMatch(/done/);
    const after = await runtime.deadLetter(listed[0]!.id);
    expect(after!.resolution).toMatchObject({ kind: 'dropped', detail: expect.stringContaining('decommissioned') });
    const drop = spawnBaton(['dead-letters', 'drop', String(listed[0]!.id), '--url', url]);
    expect(await drop.exited).not.toBe(0);
    expect(drop.stderr()).toMatch(/reason/);
    expect(appliedSeqs(r1)).toEqual([resent.seq]);
  });
});

describe('planned handover (real services, real agent processes)', () => {
  it('baton handover --to moves the stream under load with no duplicate and no stale write; a SIGTERM to the active agent hands over too', async () => {
    const c = await startCluster({ devices: 2, fencesByEpoch: false });
    cleanups.push(() => c.dispose());
    const runtime = c.runtime({ inspector: { port: 0 }, logger: captureLogs().logger });
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    c.startAgent('a2');
    c.startAgent('a3');
    await Promise.all(['a2', 'a3'].map((id) => new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === id && resolve()))));
    const url = (await runtime.status()).inspectorUrl!;

    const load = dispatchLoad(runtime, c.devices, 600, { concurrency: 4 });
    const first = runtime.once('switch.completed');
    expect(await cli(url, 'handover', '--to', 'a2')).toMatch(/done/);
    expect((await first).assignment).toMatchObject({ agentId: 'a2', epoch: 2 });
    // the active agent told to stop: it asks for a handover and exits once it gave its lease back
    const second = runtime.once('switch.completed');
    c.agents.get('a2')!.kill('SIGTERM');
    const next = (await second).assignment;
    expect(next.epoch).toBe(3);
    expect(['a1', 'a3']).toContain(next.agentId); // any healthy idle agent (a1 gave its lease back and stayed up)
    expect(await c.agents.get('a2')!.exited).toBe(0);
    const seqs = await load;
    const checks = await awaitAndCheck(c, seqs);
    expect(checks.filter((x) => !x.ok)).toEqual([]);
    // the devices' own logs: every seq once, in order, none written under an epoch after it was given back
    for (const sim of c.sims) {
      const applied = sim.applied.filter((e) => e.seq !== null);
      expect(new Set(applied.map((e) => e.seq)).size).toBe(applied.length);
      expect(staleWrites(applied)).toBe(0);
    }
    const switches = (await runtime.status()).switches;
    expect(switches.map((s) => s.reason)).toEqual(expect.arrayContaining([expect.stringMatching(/planned handover/), expect.stringMatching(/planned handover/)]));
    const audit = await runtime.audit();
    expect(audit.find((a) => a.action === 'handover' && a.by.includes('cli:'))).toMatchObject({ outcome: 'done', target: 'a2' });
  });
});
