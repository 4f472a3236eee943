// The per-device view against the real RabbitMQ and PostgreSQL: a real agent process (onPermanent
// block) and a simulated device that refuses one message (a port under a vlan that does not exist:
// 422). devices() says the line is blocked at that seq with the device's status and answer, the
// device's applied log shows the line stopped there, applied() behind it says so, and
// `baton devices --json` prints the same from the runtime's inspector.
import { afterEach, describe, expect, it } from 'vitest';
import type { DeviceView, RuntimeEvents } from '../../src/api.ts';
import { startDeviceSimulator } from '../../src/devices/simulator.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { spawnAgent, spawnBaton, writeDevicesFile } from '../../src/tools/processes.ts';
import { captureLogs } from '../support/log-capture.ts';
import { AMQP_URL, freshDatabase, freshNamespace } from '../support/services.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

describe('the per-device view (real services, a real agent process)', () => {
  it('a device refuses one message under onPermanent block: devices() and baton devices say blocked at that seq, and the line stops there', async () => {
    const db = freshDatabase();
    const ns = freshNamespace();
    const sim = await startDeviceSimulator();
    cleanups.push(db.drop, () => ns.drop(['a1']), () => sim.close());
    const devices = [{ id: 'fw1', url: sim.url, fencesByEpoch: true }];
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

    const deadLettered = runtime.once('message.dead-lettered');
    // the active agent's heartbeats tell the runtime the line is held: it says so once, as an event
    const held = new Promise<RuntimeEvents['device.line']>((resolve) => runtime.on('device.line', (e) => e.line?.state === 'blocked' && resolve(e)));
    const one = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/10', body: { name: 'users' } });
    const refused = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/99/ports/1', body: { mode: 'access' } });
    const behind = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/vlans/11', body: { name: 'voice' } });
    await runtime.applied(one, { timeoutMs: 15_000 });
    expect(await deadLettered).toMatchObject({ deviceId: 'fw1', seq: refused.seq });

    expect(await held).toMatchObject({ deviceId: 'fw1', agentId: 'a1', line: { state: 'blocked', seq: refused.seq, status: 422 } });
    const view = (await runtime.devices()).find((d) => d.deviceId === 'fw1')!;
    // the watermark counts the refused seq settled (dead-lettered); the one behind it is the lag
    expect(view).toMatchObject({ state: 'blocked', agentId: 'a1', watermark: refused.seq, lag: 1, parked: 0, blocked: { seq: refused.seq, status: 422 }, retrying: null });
    expect(view.blocked!.response).toContain('parent /vlans/99 does not exist');
    expect(view.oldestUnappliedMs).toBeGreaterThan(0);
    expect((await runtime.status()).devices.find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'blocked' });
    // the device's log: the line stopped at the refused seq (nothing after it was written)
    expect(sim.applied.map((e) => e.seq)).toEqual([one.seq]);

    await expect(runtime.applied(behind, { timeoutMs: 1000 })).rejects.toThrow(new RegExp(`blocked at seq ${refused.seq}.*status 422.*baton unblock fw1 --retry.*baton unblock fw1 --skip`));

    const url = (await runtime.status()).inspectorUrl!;
    const cli = spawnBaton(['devices', '--json', '--url', url]);
    expect(await cli.exited, cli.stderr()).toBe(0);
    const printed = (JSON.parse(cli.stdout()) as DeviceView[]).find((d) => d.deviceId === 'fw1');
    expect(printed).toMatchObject({ state: 'blocked', agentId: 'a1', watermark: refused.seq, blocked: { seq: refused.seq, status: 422 } });
    expect(sim.applied.map((e) => e.seq)).toEqual([one.seq]);
  });
});
