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
import type { Runtime } from '../api.ts';
import type { Assignment } from '../ports.ts';
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

interface Demo {
  o: DemoOptions;
  say(line: string): void;
  sims: DeviceSimulator[];
  devices: Array<{ id: string; url: string; fencesByEpoch: boolean }>;
  agents: Map<string, ChildHandle>;
}

/** The runtime (not started yet), telling the handover as it happens. */
function demoRuntime(d: Demo, place: { amqpUrl: string; databaseUrl: string; namespace: string; secret: string }): Runtime {
  const { o, say } = d;
  const r = createRuntime({
    devices: d.devices,
    ...place,
    logger: o.logger,
    ...(o.managementUrl ? { managementUrl: o.managementUrl } : {}),
    ...(o.inspectPort !== undefined ? { inspector: { port: o.inspectPort } } : {}),
  });
  r.on('agent.dead', (e) => say(`agent     ${e.agentId} is dead (${e.reason})`));
  r.on('switch.started', (e) => say(`switch    started: epoch ${e.assignment.epoch}, new messages parked in PostgreSQL (${e.reason})`));
  r.on('switch.phase', (e) => e.phase !== 'switching' && say(`switch    ${e.phase}${e.phase === 'draining' ? `: moving ${e.assignment.previousAgent}'s queue to ${e.assignment.agentId}` : ''}`));
  r.on('replay.completed', (e) => e.replayed > 0 && say(`switch    ${e.replayed} parked messages replayed to ${e.agentId}`));
  r.on('switch.completed', (e) => say(`switch    completed: ${e.assignment.agentId} is the active agent, epoch ${e.assignment.epoch}`));
  r.on('message.dead-lettered', (e) => say(`dead      ${e.deviceId} seq ${e.seq}: ${e.reason}`));
  return r;
}

/** The agent processes, until the runtime has made one active (an agent that exits first fails the demo). */
async function startDemoAgents(d: Demo, r: Runtime, agentIds: string[], start: (id: string) => ChildHandle): Promise<Assignment> {
  for (const id of agentIds) d.agents.set(id, start(id));
  const active = await Promise.race([
    r.ready({ timeoutMs: 30_000 }),
    ...[...d.agents.values()].map((a) => a.exited.then((c) => Promise.reject(new Error(`an agent exited (${c}): ${a.stderr().slice(-2000)}`)))),
  ]);
  d.say(`agents    ${agentIds.join(', ')} started; ${active.agentId} is active (epoch ${active.epoch})`);
  return active;
}

/** Kills the active agent and tells when a device first applies a write under a newer epoch than `active`'s. */
async function killActive(d: Demo, r: Runtime, active: Assignment): Promise<{ killedAt: number; resumedAt(): number | null }> {
  const victim = (await r.status()).assignment!.agentId;
  const killedAt = performance.now();
  let resumedAt: number | null = null;
  d.agents.get(victim)!.kill('SIGKILL');
  d.say(`fault     kill -9 ${victim} (pid ${d.agents.get(victim)!.child.pid})`);
  const onApplied = (e: { epoch: number | null }) => {
    if (resumedAt === null && e.epoch !== null && e.epoch > active.epoch) {
      resumedAt = performance.now();
      d.say(`resumed   first write under the new epoch, ${Math.round(resumedAt - killedAt)} ms after the kill`);
      for (const s of d.sims) s.events.off('applied', onApplied);
    }
  };
  for (const s of d.sims) s.events.on('applied', onApplied);
  return { killedAt, resumedAt: () => resumedAt };
}

/** The paced load, round-robin over the devices, with the kill at its share; resolves once every message is accepted. */
async function runDemoLoad(d: Demo, r: Runtime, active: Assignment) {
  const { o, say, devices } = d;
  const seqs = new Map<string, number[]>(devices.map((x) => [x.id, []]));
  const perDevice = new Map<string, number>();
  let kill: Awaited<ReturnType<typeof killActive>> | null = null;
  const killIndex = o.killAt === null ? -1 : Math.floor(o.messages * o.killAt);
  say(`load      ${o.messages} messages at ${o.rate}/s over ${o.devices} devices${killIndex >= 0 ? `; the active agent is killed after ${killIndex}` : ''}`);
  const pending: Promise<unknown>[] = [];
  const started = performance.now();
  for (let i = 0; i < o.messages && !o.signal?.aborted; i++) {
    // the pacing of the load (messages per second)
    const wait = started + (i * 1000) / o.rate - performance.now();
    if (wait > 1) await sleep(wait, o.signal);
    if (i === killIndex) kill = await killActive(d, r, active);
    const device = devices[i % devices.length]!;
    const k = perDevice.get(device.id) ?? 0;
    perDevice.set(device.id, k + 1);
    pending.push(r.dispatch(workloadMessage(device.id, k)).then((x) => seqs.get(x.deviceId)!.push(x.seq)));
    if (i > 0 && i % Math.max(1, Math.floor(o.messages / 5)) === 0) say(`load      ${i} dispatched`);
  }
  await Promise.all(pending);
  say(`load      ${o.messages} accepted (each confirmed by RabbitMQ or committed to PostgreSQL)`);
  // the kill-to-resume figure is read at the end: the first write under the new epoch may come after the load
  const killToResumeMs = () => {
    const resumedAt = kill?.resumedAt() ?? null;
    return kill && resumedAt !== null ? Math.round(resumedAt - kill.killedAt) : null;
  };
  return { seqs, started, killIndex, killToResumeMs };
}

/** Checks every device's own applied log against what was accepted, and prints the table, the switches and the verdict. */
async function checkDemo(d: Demo, r: Runtime, load: Awaited<ReturnType<typeof runDemoLoad>>): Promise<DemoResult> {
  const { o, sims, devices } = d;
  await Promise.all(sims.map((s, i) => awaitApplied(s, load.seqs.get(devices[i]!.id)!.length, o.timeoutMs ?? 60_000)));
  const elapsed = (performance.now() - load.started) / 1000;
  const checks = sims.map((s, i) => ({ ...checkDevice(devices[i]!.id, s.applied.map((e) => e.seq), load.seqs.get(devices[i]!.id)!), staleWrites: staleWrites(s.applied) }));
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
  const killToResumeMs = load.killToResumeMs();
  const switched = load.killIndex < 0 || switches.length === 1;
  const ok = !o.signal?.aborted && switched && checks.every((c) => c.ok && c.staleWrites === 0);
  o.out('');
  o.out(
    `${ok ? 'every device applied every message once, in order, with no stale write' : 'CHECK FAILED'}: ${o.messages} messages in ${elapsed.toFixed(2)} s` +
      (killToResumeMs !== null ? `; kill → next agent writing: ${killToResumeMs} ms` : ''),
  );
  return { ok, checks, figures: { throughputPerSec: Math.round(o.messages / elapsed), killToResumeMs, switches: switches.length } };
}

export async function runDemo(o: DemoOptions): Promise<DemoResult> {
  const amqpUrl = o.amqpUrl ?? runtimeDefaults.amqpUrl;
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const namespace = `baton-demo-${tag}`;
  const databaseUrl = withDatabase(o.databaseUrl ?? runtimeDefaults.databaseUrl, `baton_demo_${tag.replace(/-/g, '_')}`);
  const agentIds = Array.from({ length: o.agents }, (_, i) => `demo-agent-${i + 1}`);
  // a deployment secret of this run only: the runtime holds it, each agent its own credential
  const secret = newSecret();
  const t0 = performance.now();
  const at = () => `${((performance.now() - t0) / 1000).toFixed(2).padStart(6)}s`;
  const d: Demo = { o, say: (line) => o.out(`${at()}  ${line}`), sims: [], devices: [], agents: new Map() };
  let runtime: Runtime | null = null;
  try {
    for (let i = 0; i < o.devices; i++) d.sims.push(await startDeviceSimulator());
    d.devices = d.sims.map((s, i) => ({ id: `fw${i + 1}`, url: s.url, fencesByEpoch: true }));
    const devicesFile = writeDevicesFile(d.devices);
    d.say(`devices   ${d.devices.map((x) => `${x.id} ${x.url}`).join(', ')}`);
    runtime = demoRuntime(d, { amqpUrl, databaseUrl, namespace, secret });
    await runtime.start();
    const inspectorUrl = (await runtime.status()).inspectorUrl;
    if (inspectorUrl) d.say(`inspector ${inspectorUrl} (open it now: the agents start in a moment)`);
    const active = await startDemoAgents(d, runtime, agentIds, (id) => spawnAgent({ id, key: agentCredential(secret, id), devicesFile, amqpUrl, namespace, logLevel: 'warn' }));
    const load = await runDemoLoad(d, runtime, active);
    return await checkDemo(d, runtime, load);
  } finally {
    await runtime?.stop().catch(() => {});
    for (const a of d.agents.values()) {
      a.kill('SIGKILL');
      await a.exited;
    }
    await Promise.all(d.sims.map((s) => s.close()));
    await deleteNamespace(amqpUrl, namespace, agentIds).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  }
}
