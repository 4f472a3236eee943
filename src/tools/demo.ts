/**
 * `baton demo`: simulated devices, three real agent processes and the runtime, in one command.
 * It sends a steady parent/child load, kills the active agent with SIGKILL part-way, shows the
 * handover live, then checks every device's own applied log and prints a table. Everything it
 * creates (database, queues, processes) is removed at the end, also on Ctrl-C.
 */
import type { Logger } from 'pino';
import { deleteNamespace, dropDatabase, withDatabase } from './admin.ts';
import { checkDevice, staleWrites, type DeviceCheck } from '../devices/checker.ts';
import { runtimeDefaults } from '../config.ts';
import { agentCredential, newSecret } from '../trust.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../devices/simulator.ts';
import { spawnAgent, writeDevicesFile, type ChildHandle } from './processes.ts';
import { createRuntime } from '../runtime/runtime.ts';
import { type Runtime } from '../api.ts';
import { workloadMessage } from './workload.ts';

export interface DemoOptions {
  devices: number;
  agents: number;
  messages: number;
  /** messages per second */
  rate: number;
  /** kill the active agent after this share of the load (0..1); null: no fault */
  killAt: number | null;
  amqpUrl?: string;
  databaseUrl?: string;
  managementUrl?: string;
  logger: Logger;
  out: (line: string) => void;
  /** ms to wait for every device to catch up */
  timeoutMs?: number;
  /** aborts the run (Ctrl-C): cleanup still happens */
  signal?: AbortSignal;
  /** serve the live inspector on this port (127.0.0.1) */
  inspectPort?: number;
}

export interface DemoResult {
  ok: boolean;
  checks: Array<DeviceCheck & { staleWrites: number }>;
  figures: { throughputPerSec: number; killToResumeMs: number | null; switches: number };
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

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const onAbort = () => (clearTimeout(t), resolve());
    const t = setTimeout(() => (signal?.removeEventListener('abort', onAbort), resolve()), ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const amqpUrl = o.amqpUrl ?? runtimeDefaults.amqpUrl;
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const namespace = `baton-demo-${tag}`;
  const databaseUrl = withDatabase(o.databaseUrl ?? runtimeDefaults.databaseUrl, `baton_demo_${tag.replace(/-/g, '_')}`);
  const agentIds = Array.from({ length: o.agents }, (_, i) => `demo-agent-${i + 1}`);
  // a deployment secret of this run only: the runtime holds it, each agent its own credential
  const secret = newSecret();
  const sims: DeviceSimulator[] = [];
  const agents = new Map<string, ChildHandle>();
  let runtime: Runtime | null = null;
  const t0 = performance.now();
  const at = () => `${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s`;
  const say = (line: string) => o.out(`${at()}  ${line}`);
  try {
    for (let i = 0; i < o.devices; i++) sims.push(await startDeviceSimulator());
    const devices = sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url, fencesByEpoch: true }));
    const devicesFile = writeDevicesFile(devices);
    say(`devices   ${devices.map((d) => `${d.id} ${d.url}`).join(', ')}`);

    runtime = createRuntime({
      devices,
      amqpUrl,
      databaseUrl,
      namespace,
      secret,
      logger: o.logger,
      ...(o.managementUrl ? { managementUrl: o.managementUrl } : {}),
      ...(o.inspectPort !== undefined ? { inspector: { port: o.inspectPort } } : {}),
    });
    const r = runtime;
    r.on('agent.dead', (e) => say(`agent     ${e.agentId} is dead (${e.reason})`));
    r.on('switch.started', (e) => say(`switch    started: epoch ${e.assignment.epoch}, new messages parked in PostgreSQL (${e.reason})`));
    r.on('switch.phase', (e) => e.phase !== 'switching' && say(`switch    ${e.phase}${e.phase === 'draining' ? `: moving ${e.assignment.previousAgent}'s queue to ${e.assignment.agentId}` : ''}`));
    r.on('replay.completed', (e) => e.replayed > 0 && say(`switch    ${e.replayed} parked messages replayed to ${e.agentId}`));
    r.on('switch.completed', (e) => say(`switch    completed: ${e.assignment.agentId} is the active agent, epoch ${e.assignment.epoch}`));
    r.on('message.dead-lettered', (e) => say(`dead      ${e.deviceId} seq ${e.seq}: ${e.reason}`));
    await r.start();
    const inspectorUrl = (await r.status()).inspectorUrl;
    if (inspectorUrl) say(`inspector ${inspectorUrl} (open it now: the agents start in a moment)`);
    for (const id of agentIds) agents.set(id, spawnAgent({ id, key: agentCredential(secret, id), devicesFile, amqpUrl, namespace, logLevel: 'warn' }));
    const active = await Promise.race([
      r.ready({ timeoutMs: 30_000 }),
      ...[...agents.values()].map((a) => a.exited.then((c) => Promise.reject(new Error(`an agent exited (${c}): ${a.stderr().slice(-2000)}`)))),
    ]);
    say(`agents    ${agentIds.join(', ')} started; ${active.agentId} is active (epoch ${active.epoch})`);

    const seqs = new Map<string, number[]>(devices.map((d) => [d.id, []]));
    const perDevice = new Map<string, number>();
    let killedAt: number | null = null;
    let resumedAt: number | null = null;
    const killIndex = o.killAt === null ? -1 : Math.floor(o.messages * o.killAt);
    say(`load      ${o.messages} messages at ${o.rate}/s over ${o.devices} devices${killIndex >= 0 ? `; the active agent is killed after ${killIndex}` : ''}`);
    const pending: Promise<unknown>[] = [];
    const started = performance.now();
    for (let i = 0; i < o.messages && !o.signal?.aborted; i++) {
      const due = started + (i * 1000) / o.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait, o.signal);
      if (i === killIndex) {
        const victim = (await r.status()).assignment!.agentId;
        killedAt = performance.now();
        agents.get(victim)!.kill('SIGKILL');
        say(`fault     kill -9 ${victim} (pid ${agents.get(victim)!.child.pid})`);
        const onApplied = (e: { epoch: number | null }) => {
          if (resumedAt === null && e.epoch !== null && e.epoch > active.epoch) {
            resumedAt = performance.now();
            say(`resumed   first write under the new epoch, ${Math.round(resumedAt - killedAt!)} ms after the kill`);
            for (const s of sims) s.events.off('applied', onApplied);
          }
        };
        for (const s of sims) s.events.on('applied', onApplied);
      }
      const d = devices[i % devices.length]!;
      const k = perDevice.get(d.id) ?? 0;
      perDevice.set(d.id, k + 1);
      pending.push(r.dispatch(workloadMessage(d.id, k)).then((x) => seqs.get(x.deviceId)!.push(x.seq)));
      if (i > 0 && i % Math.max(1, Math.floor(o.messages / 5)) === 0) say(`load      ${i} dispatched`);
    }
    await Promise.all(pending);
    say(`load      ${o.messages} accepted (each confirmed by RabbitMQ or committed to PostgreSQL)`);

    await Promise.all(sims.map((s, i) => awaitApplied(s, seqs.get(devices[i]!.id)!.length, o.timeoutMs ?? 60_000)));
    const elapsed = (performance.now() - started) / 1000;
    const checks = sims.map((s, i) => ({ ...checkDevice(devices[i]!.id, s.applied.map((e) => e.seq), seqs.get(devices[i]!.id)!), staleWrites: staleWrites(s.applied) }));
    const switches = (await r.status()).switches;
    o.out('');
    o.out('device  dispatched  applied  missing  duplicates  out-of-order  stale-epoch  result');
    for (const c of checks) {
      const ok = c.ok && c.staleWrites === 0;
      o.out(
        `${c.deviceId.padEnd(7)} ${String(c.expected).padStart(10)} ${String(c.applied).padStart(8)} ${String(c.missing).padStart(8)} ` +
          `${String(c.duplicates).padStart(11)} ${String(c.outOfOrder).padStart(13)} ${String(c.staleWrites).padStart(12)}  ${ok ? 'ok' : 'FAILED'}`,
      );
    }
    for (const w of switches) {
      const ms = (a: Date | null, b: Date | null) => (a && b ? `${b.getTime() - a.getTime()} ms` : '-');
      o.out(`switch ${w.fromAgent} → ${w.toAgent}, epoch ${w.epoch}: switching ${ms(w.startedAt, w.drainingAt)}, draining ${ms(w.drainingAt, w.replayingAt)} (moved ${w.moved}), replaying ${ms(w.replayingAt, w.completedAt)} (replayed ${w.replayed})`);
    }
    const killToResumeMs = killedAt !== null && resumedAt !== null ? Math.round(resumedAt - killedAt) : null;
    const switched = killIndex < 0 || switches.length === 1;
    const ok = !o.signal?.aborted && switched && checks.every((c) => c.ok && c.staleWrites === 0);
    o.out('');
    o.out(
      `${ok ? 'every device applied every message once, in order, with no stale write' : 'CHECK FAILED'}: ${o.messages} messages in ${elapsed.toFixed(2)} s` +
        (killToResumeMs !== null ? `; kill → next agent writing: ${killToResumeMs} ms` : ''),
    );
    return { ok, checks, figures: { throughputPerSec: Math.round(o.messages / elapsed), killToResumeMs, switches: switches.length } };
  } finally {
    await runtime?.stop().catch(() => {});
    for (const a of agents.values()) {
      a.kill('SIGKILL');
      await a.exited;
    }
    await Promise.all(sims.map((s) => s.close()));
    await deleteNamespace(amqpUrl, namespace, agentIds).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  }
}
