/**
 * `baton demo`: simulated devices, one real agent process and the runtime, in one command. It
 * dispatches a few thousand parent/child messages, waits until every device applied them, checks
 * each device's own applied log and prints a table. Everything it creates is removed at the end.
 */
import type { Logger } from 'pino';
import { deleteNamespace, dropDatabase, withDatabase } from './admin.ts';
import { checkDevice, type DeviceCheck } from './checker.ts';
import { runtimeDefaults } from './config.ts';
import { startDeviceSimulator, type DeviceSimulator } from './device-simulator.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from './processes.ts';
import { createRuntime, type Runtime } from './runtime.ts';
import { workloadMessage } from './workload.ts';

export interface DemoOptions {
  devices: number;
  messages: number;
  amqpUrl?: string;
  databaseUrl?: string;
  logger: Logger;
  out: (line: string) => void;
  /** ms to wait for every device to catch up */
  timeoutMs?: number;
}

/** Waits until `sim` applied `count` writes, or the deadline passes. */
export function awaitApplied(sim: DeviceSimulator, count: number, timeoutMs: number): Promise<boolean> {
  if (sim.applied.length >= count) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onApplied = () => {
      if (sim.applied.length >= count) done(true);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sim.events.off('applied', onApplied);
      resolve(ok);
    };
    sim.events.on('applied', onApplied);
  });
}

export async function runDemo(o: DemoOptions): Promise<{ ok: boolean; checks: DeviceCheck[] }> {
  const amqpUrl = o.amqpUrl ?? runtimeDefaults.amqpUrl;
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const namespace = `baton-demo-${tag}`;
  const databaseUrl = withDatabase(o.databaseUrl ?? runtimeDefaults.databaseUrl, `baton_demo_${tag.replace(/-/g, '_')}`);
  const agentId = 'demo-agent-1';
  const sims: DeviceSimulator[] = [];
  let agent: ChildHandle | null = null;
  let runtime: Runtime | null = null;
  try {
    for (let i = 0; i < o.devices; i++) sims.push(await startDeviceSimulator());
    const devices = sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url }));
    o.out(`devices:  ${devices.map((d) => `${d.id} ${d.url}`).join(', ')}`);

    runtime = createRuntime({ devices, amqpUrl, databaseUrl, namespace, logger: o.logger });
    await runtime.start();
    const active = runtime.once('coordinator.active');
    agent = spawnAgent({ id: agentId, devicesFile: writeDevicesFile(devices), amqpUrl, namespace, logLevel: 'warn' });
    const first = await Promise.race([active, agent.exited.then((c) => Promise.reject(new Error(`agent exited (${c}): ${agent!.stderr().slice(-2000)}`)))]);
    o.out(`agent:    ${first.assignment.agentId} (pid ${agent.child.pid}) is the active agent, epoch ${first.assignment.epoch}`);

    const started = performance.now();
    const sent: Promise<unknown>[] = [];
    const seqs = new Map<string, number[]>(devices.map((d) => [d.id, []]));
    for (let i = 0; i < o.messages; i++) {
      const d = devices[i % devices.length]!;
      sent.push(runtime.dispatch(workloadMessage(d.id, Math.floor(i / devices.length))).then((r) => seqs.get(r.deviceId)!.push(r.seq)));
    }
    await Promise.all(sent);
    const accepted = performance.now() - started;
    o.out(`dispatch: ${o.messages} messages accepted (broker-confirmed) in ${accepted.toFixed(0)} ms`);

    const perDevice = Math.ceil(o.messages / devices.length);
    await Promise.all(sims.map((s, i) => awaitApplied(s, seqs.get(devices[i]!.id)!.length || perDevice, o.timeoutMs ?? 60_000)));
    const elapsed = performance.now() - started;

    const checks = sims.map((s, i) => checkDevice(devices[i]!.id, s.applied.map((e) => e.seq), seqs.get(devices[i]!.id)!));
    o.out('');
    o.out('device  dispatched  applied  missing  duplicates  out-of-order  refused  result');
    for (const [i, c] of checks.entries()) {
      const refused = sims[i]!.fencedWrites;
      o.out(
        `${c.deviceId.padEnd(7)} ${String(c.expected).padStart(10)} ${String(c.applied).padStart(8)} ${String(c.missing).padStart(8)} ` +
          `${String(c.duplicates).padStart(11)} ${String(c.outOfOrder).padStart(13)} ${String(refused).padStart(8)}  ${c.ok ? 'ok' : 'FAILED'}`,
      );
    }
    const ok = checks.every((c) => c.ok);
    o.out('');
    o.out(`${ok ? 'all devices applied every message once, in order' : 'CHECK FAILED'}: ${o.messages} messages in ${(elapsed / 1000).toFixed(2)} s (${Math.round(o.messages / (elapsed / 1000))} msg/s end to end)`);
    return { ok, checks };
  } finally {
    await runtime?.stop().catch(() => {});
    if (agent) {
      agent.kill('SIGTERM');
      await agent.exited;
    }
    await Promise.all(sims.map((s) => s.close()));
    await deleteNamespace(amqpUrl, namespace, [agentId]).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  }
}
