/**
 * Runs a scenario: simulated devices, real agent and runtime processes against the real services,
 * a paced load, the timeline of faults; then checks every device's own applied log against what
 * the runtimes accepted, and reports. Everything it made is removed at the end, also on abort.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { deleteNamespace, dropDatabase, withDatabase } from '../admin.ts';
import { createAmqpBroker } from '../../adapters/amqp/broker.ts';
import { systemClock } from '../../clock.ts';
import { BatonError } from '../../errors.ts';
import { checkDevice, staleWrites } from '../../devices/checker.ts';
import { localManagementUrl, runtimeDefaults } from '../../config.ts';
import { agentCredential, newSecret } from '../../trust.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../devices/simulator.ts';
import { createOrmStore } from '../../adapters/orm/store.ts';
import { batonBin, spawnAgent, writeDevicesFile, type ChildHandle } from '../processes.ts';
import type { DeadLetter, SwitchRecord } from '../../ports.ts';
import { workloadMessage } from '../workload.ts';
import type { ConfigMessage } from '../../wire.ts';
import type { FromRuntime, ToRuntime } from './runtime-process.ts';
import type { Scenario, Step } from './schema.ts';

const run = promisify(execFile);

export interface Check {
  name: string;
  ok: boolean;
  [count: string]: unknown;
}

export interface TimelineEntry {
  t: number;
  kind: 'fault' | 'phase' | 'agent' | 'leader';
  text: string;
}

export interface ScenarioReport {
  name: string;
  ok: boolean;
  checks: Check[];
  figures: {
    throughputPerSec: number;
    killToResumeMs: number | null;
    durationMs: number;
    switches: Array<{ from: string | null; to: string | null; epoch: number; reason: string; switchingMs: number | null; drainingMs: number | null; replayingMs: number | null; moved: number; replayed: number }>;
  };
  timeline: TimelineEntry[];
  /** applied writes per device per second since the load began */
  throughput: Record<string, number[]>;
}

export interface RunOptions {
  amqpUrl?: string;
  databaseUrl?: string;
  managementUrl?: string;
  logger: Logger;
  /** progress: share of the load dispatched (0..1) */
  onProgress?: (share: number) => void;
  onTimeline?: (e: TimelineEntry) => void;
  signal?: AbortSignal;
  /** serve the inspector from the first runtime on this port */
  inspectPort?: number;
  /** told the inspector's URL once it listens */
  onInspector?: (url: string) => void;
}

interface RuntimeChild {
  id: string;
  proc: ChildProcess;
  leading: boolean;
  alive: boolean;
  pending: Map<number, (r: FromRuntime & { type: 'result' }) => void>;
}

async function preflight(amqpUrl: string, databaseUrl: string, logger: Logger): Promise<void> {
  const hint = ' (to rehearse failures without the services, run `npx baton sim`)';
  const broker = createAmqpBroker({ url: amqpUrl, namespace: 'baton-preflight', queueType: 'classic', maxUnconfirmed: 1, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger });
  try {
    await broker.start();
  } catch (err) {
    throw new BatonError((err as BatonError).code ?? 'broker-unavailable', (err as Error).message + hint);
  } finally {
    await broker.close().catch(() => {});
  }
  try {
    const store = await createOrmStore({ databaseUrl, logger });
    await store.close();
  } catch (err) {
    throw new BatonError((err as BatonError).code ?? 'database-unavailable', (err as Error).message + hint);
  }
}

export async function runScenario(s: Scenario, o: RunOptions): Promise<ScenarioReport> {
  const amqpUrl = o.amqpUrl ?? runtimeDefaults.amqpUrl;
  const managementUrl = s.managementApi ? (o.managementUrl ?? localManagementUrl) : undefined;
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const namespace = `baton-scn-${tag}`;
  // a deployment secret of this run only: runtimes get it, each agent its own credential
  const secret = newSecret();
  const keyOf = (id: string) => agentCredential(secret, id);
  const databaseUrl = withDatabase(o.databaseUrl ?? runtimeDefaults.databaseUrl, `baton_scn_${tag.replace(/-/g, '_')}`);
  const sims: DeviceSimulator[] = [];
  const agents = new Map<string, ChildHandle>();
  const runtimes = new Map<string, RuntimeChild>();
  const timeline: TimelineEntry[] = [];
  const t0 = performance.now();
  const note = (kind: TimelineEntry['kind'], text: string) => {
    const e = { t: Math.round(performance.now() - t0), kind, text };
    timeline.push(e);
    o.onTimeline?.(e);
  };
  const waiters: Array<{ event: string; resolve(): void }> = [];
  const fire = (event: string) => {
    for (const w of waiters.filter((x) => x.event === event)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  };
  let activeAgent: string | null = null;
  let lastEpoch = 0;
  let killedAt: number | null = null;
  let resumedAt: number | null = null;
  const agentFlags = s.load.shape === 'poison' ? ['--on-permanent', 'skip'] : [];

  // the services first: a clear message (and the offline alternative) instead of a child process failing
  await preflight(amqpUrl, databaseUrl, o.logger);
  try {
    for (let i = 0; i < s.devices.count; i++) {
      const sim = await startDeviceSimulator({ faults: { latencyMs: s.devices.latencyMs, errorRate: s.devices.errorRate } });
      sim.events.on('applied', (e: { epoch: number | null }) => {
        if (killedAt !== null && resumedAt === null && e.epoch !== null && e.epoch > lastEpoch) resumedAt = performance.now();
      });
      sims.push(sim);
    }
    const devices = sims.map((sim, i) => ({ id: `fw${i + 1}`, url: sim.url, fencesByEpoch: s.devices.fencesByEpoch }));
    const devicesFile = writeDevicesFile(devices);

    const startRuntime = (id: string) => {
      const proc = spawn(process.execPath, [batonBin, '_runtime'], {
        env: {
          ...process.env,
          BATON_AMQP_URL: amqpUrl,
          BATON_DATABASE_URL: databaseUrl,
          BATON_NAMESPACE: namespace,
          BATON_SECRET: secret,
          BATON_SCENARIO_RUNTIME: JSON.stringify({
            devices: devices.map((d) => ({ id: d.id, fencesByEpoch: d.fencesByEpoch })),
            runtimeId: id,
            leaderTtl: 3000,
            managementUrl,
            ...(o.inspectPort !== undefined && id === s.runtimes[0] ? { inspectPort: o.inspectPort } : {}),
          }),
        },
        stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      });
      proc.stderr!.resume();
      const r: RuntimeChild = { id, proc, leading: false, alive: true, pending: new Map() };
      runtimes.set(id, r);
      const gone = () => {
        r.alive = false;
        r.leading = false;
        for (const p of r.pending.values()) p({ type: 'result', id: -1, ok: false, code: 'runtime-gone', message: 'the runtime process ended' });
        r.pending.clear();
      };
      proc.on('error', gone);
      proc.on('disconnect', gone);
      const started = new Promise<void>((resolve, reject) => {
        proc.on('exit', (code, sig) => {
          gone();
          reject(new Error(`runtime ${id} exited (${sig ?? code}) before it started`));
        });
        proc.on('message', (m: FromRuntime) => {
          if (m.type === 'started') {
            if (m.inspectorUrl) o.onInspector?.(m.inspectorUrl);
            resolve();
          }
          else if (m.type === 'result') {
            r.pending.get(m.id)?.(m);
            r.pending.delete(m.id);
          } else if (m.type === 'event') onRuntimeEvent(r, m.name, m.payload as Record<string, unknown>);
        });
      });
      return started;
    };

    const onRuntimeEvent = (r: RuntimeChild, name: string, p: Record<string, unknown>) => {
      const a = p.assignment as { agentId: string; epoch: number; previousAgent: string | null } | undefined;
      switch (name) {
        case 'leader.won':
          r.leading = true;
          note('leader', `${r.id} leads`);
          break;
        case 'leader.lost':
          r.leading = false;
          note('leader', `${r.id} stands by`);
          break;
        case 'coordinator.active':
          activeAgent = a!.agentId;
          if (killedAt === null) lastEpoch = a!.epoch;
          break;
        case 'agent.dead':
          note('agent', `${p.agentId} dead (${p.reason})`);
          break;
        case 'agent.alive':
          note('agent', `${p.agentId} alive`);
          break;
        case 'switch.started':
          note('phase', `switching (epoch ${a!.epoch})`);
          break;
        case 'switch.phase':
          if (p.phase !== 'switching') note('phase', String(p.phase));
          if (p.phase === 'awaiting-candidate') fire('switch.awaiting-candidate');
          if (p.phase === 'replaying') fire('switch.replaying');
          break;
        case 'switch.completed':
          note('phase', `normal (${a!.agentId})`);
          fire('switch.completed');
          break;
      }
    };

    // the runtimes first (in order: the first leads), then the first agent, which becomes active, then the others
    for (const id of s.runtimes) {
      await startRuntime(id);
      for (let i = 0; i < 100 && id === s.runtimes[0] && !runtimes.get(id)!.leading; i++) await new Promise((x) => setTimeout(x, 50));
    }
    const [firstAgent, ...otherAgents] = s.agents;
    agents.set(firstAgent!, spawnAgent({ id: firstAgent!, key: keyOf(firstAgent!), devicesFile, amqpUrl, namespace, extra: agentFlags, logLevel: 'error' }));

    // dispatch through whichever runtime leads; a message refused or lost in flight was not accepted and is sent again
    let nextId = 1;
    const leader = () => [...runtimes.values()].find((r) => r.alive && r.leading);
    const dispatch = async (message: ConfigMessage): Promise<{ deviceId: string; seq: number } | null> => {
      for (let attempt = 0; attempt < 600 && !o.signal?.aborted; attempt++) {
        const r = leader();
        if (r) {
          const id = nextId++;
          const res = await new Promise<FromRuntime & { type: 'result' }>((resolve) => {
            const failed = () => resolve({ type: 'result', id, ok: false, code: 'runtime-gone', message: 'the runtime process ended' });
            r.pending.set(id, resolve);
            try {
              r.proc.send({ type: 'dispatch', id, message } satisfies ToRuntime, (err) => err && (r.pending.delete(id), failed()));
            } catch {
              r.pending.delete(id);
              failed();
            }
          });
          if (res.ok) return { deviceId: res.deviceId, seq: res.seq };
        }
        await new Promise((x) => setTimeout(x, 50));
      }
      return null;
    };
    let stoppedAgent: string | null = null;
    const act = async (step: Step) => {
      note('fault', step.label);
      const pick = (id: string) => (id === 'active' ? activeAgent! : id === 'stopped' ? stoppedAgent! : id);
      switch (step.do) {
        case 'kill-agent':
          killedAt ??= performance.now(); // the first fault: a later one must not make the figure negative
          agents.get(pick(step.agent))?.kill('SIGKILL');
          break;
        case 'stop-agent':
          killedAt ??= performance.now(); // the first fault: a later one must not make the figure negative
          stoppedAgent = pick(step.agent);
          agents.get(stoppedAgent)?.kill('SIGSTOP');
          break;
        case 'resume-agent':
          agents.get(pick(step.agent))?.kill('SIGCONT');
          break;
        case 'start-agent':
          agents.set(step.agent, spawnAgent({ id: step.agent, key: keyOf(step.agent), devicesFile, amqpUrl, namespace, extra: agentFlags, logLevel: 'error' }));
          break;
        case 'kill-all-agents':
          killedAt ??= performance.now(); // the first fault: a later one must not make the figure negative
          for (const a of agents.values()) a.kill('SIGKILL');
          break;
        case 'kill-runtime': {
          const r = step.runtime === 'leader' ? leader() : runtimes.get(step.runtime);
          if (!r) break;
          if (step.phase) r.proc.send({ type: 'crash-at', phase: step.phase } satisfies ToRuntime, () => {});
          else r.proc.kill('SIGKILL');
          break;
        }
        case 'start-runtime':
          await startRuntime(step.runtime);
          break;
        case 'device-fault':
          sims[Number(step.device.slice(2)) - 1]!.setFaults(step.faults);
          break;
        case 'restart-broker':
          await run('rabbitmqctl', ['stop_app']);
          await run('rabbitmqctl', ['start_app']);
          break;
        case 'restart-database':
          await run('bash', ['-c', 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main restart -m immediate']);
          break;
      }
    };

    // wait for an active agent, then run the load with the timeline
    for (let i = 0; i < 300 && !activeAgent; i++) await new Promise((x) => setTimeout(x, 100));
    if (!activeAgent) throw new Error('no agent became active within 30 s');
    note('agent', `${activeAgent} active`);
    for (const id of otherAgents) agents.set(id, spawnAgent({ id, key: keyOf(id), devicesFile, amqpUrl, namespace, extra: agentFlags, logLevel: 'error' }));
    // the others are registered once the leader has heard them (they heartbeat within a second of starting)
    await new Promise((x) => setTimeout(x, otherAgents.length > 0 ? 2500 : 0));
    const loadStart = performance.now();
    note('fault', `load: ${s.load.messages} messages at ${s.load.rate}/s`);
    const accepted = new Map<string, number[]>(devices.map((d) => [d.id, []]));
    const perDevice = new Map<string, number>();
    let loadDoneResolve!: () => void;
    const loadDone = new Promise<void>((r) => (loadDoneResolve = r));
    const steps = [...s.timeline];
    const eventSteps = steps.filter((x) => 'event' in x.at);
    const eventRuns = eventSteps.map(
      (x) => (async () => {
        const ev = (x.at as { event: string }).event;
        if (ev !== 'load.done') await new Promise<void>((resolve) => waiters.push({ event: ev, resolve }));
        else await loadDone;
        await act(x);
      })(),
    );
    const timed = steps.filter((x) => !('event' in x.at));
    // per device in order, as a host must: a message refused by a dying runtime is sent again before the next one
    const chains = new Map<string, Promise<unknown>>(devices.map((d) => [d.id, Promise.resolve()]));
    let queued = 0;
    for (let i = 0; i < s.load.messages && !o.signal?.aborted; i++) {
      const elapsed = performance.now() - loadStart;
      while (timed.length > 0) {
        const at = timed[0]!.at;
        const due = 'percent' in at ? (i / s.load.messages) * 100 >= at.percent : 'ms' in at && elapsed >= at.ms;
        if (!due) break;
        await act(timed.shift()!);
      }
      const wait = loadStart + (i * 1000) / s.load.rate - performance.now();
      if (wait > 1) await new Promise((x) => setTimeout(x, wait));
      const d = devices[i % devices.length]!;
      const k = perDevice.get(d.id) ?? 0;
      perDevice.set(d.id, k + 1);
      const poison = s.load.shape === 'poison' && k % s.load.poisonEvery === 1; // a rule (never a policy) whose policy does not exist
      const msg = poison ? { deviceId: d.id, method: 'PUT' as const, path: `/policies/missing-${k}/rules/r${k}` } : workloadMessage(d.id, k);
      queued++;
      chains.set(d.id, chains.get(d.id)!.then(() => dispatch(msg).then((r) => (queued--, r && accepted.get(r.deviceId)!.push(r.seq)))));
      // keep the backlog bounded: the load is paced, not buffered without end
      while (queued > 2000) await Promise.race(chains.values());
      if (i % 100 === 0) o.onProgress?.(i / s.load.messages);
    }
    await Promise.all(chains.values());
    o.onProgress?.(1);
    const loadMs = performance.now() - loadStart;
    note('fault', 'load done');
    loadDoneResolve();
    for (const x of timed.splice(0)) await act(x);
    await Promise.race([Promise.all(eventRuns), new Promise((x) => setTimeout(x, s.settleMs))]);

    // settle: every accepted message applied or dead-lettered
    const store = await createOrmStore({ databaseUrl, logger: o.logger, createDatabase: false });
    let deadLetters: DeadLetter[] = [];
    const deadline = performance.now() + s.settleMs;
    const settled = () => sims.every((sim, i) => {
      const want = accepted.get(devices[i]!.id)!;
      const dead = new Set(deadLetters.filter((x) => x.deviceId === devices[i]!.id).map((x) => x.seq));
      const has = new Set(sim.applied.map((e) => e.seq));
      return want.every((seq) => has.has(seq) || dead.has(seq));
    });
    for (;;) {
      deadLetters = await store.listDeadLetters().catch(() => deadLetters);
      if (settled() || performance.now() > deadline || o.signal?.aborted) break;
      await new Promise((x) => setTimeout(x, 250));
    }
    const switches: SwitchRecord[] = await store.listSwitches().catch(() => []);
    await store.close();

    // checks (DESIGN.md §8)
    let lost = 0;
    let reordered = 0;
    let duplicates = 0;
    let maxDup = 0;
    let stale = 0;
    for (const [i, sim] of sims.entries()) {
      const id = devices[i]!.id;
      const dead = new Set(deadLetters.filter((x) => x.deviceId === id).map((x) => x.seq));
      const c = checkDevice(id, sim.applied.map((e) => e.seq), accepted.get(id)!.filter((seq) => !dead.has(seq)));
      lost += c.missing;
      reordered += c.outOfOrder;
      duplicates += c.duplicates;
      maxDup = Math.max(maxDup, c.duplicates);
      stale += staleWrites(sim.applied);
    }
    const reasons: Record<string, number> = {};
    for (const d of deadLetters) reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
    const totalAccepted = [...accepted.values()].reduce((t, x) => t + x.length, 0);
    const checks: Check[] = [
      { name: 'nothing lost', ok: lost === 0, accepted: totalAccepted, lost },
      { name: 'order per device', ok: reordered === 0, reordered },
      { name: 'duplicates within bound', ok: maxDup <= s.expect.maxDuplicatesPerDevice, duplicates, maxPerDevice: maxDup, bound: s.expect.maxDuplicatesPerDevice },
      { name: 'no stale-epoch write', ok: stale === 0, staleWrites: stale },
      { name: 'dead letters as expected', ok: deadLetters.length === s.expect.deadLetters, deadLettered: deadLetters.length, expected: s.expect.deadLetters, reasons },
    ];
    if (s.expect.switches !== null) checks.push({ name: 'switches', ok: switches.length === s.expect.switches && switches.every((w) => w.phase === 'normal'), switches: switches.length, expected: s.expect.switches });
    const applied = sims.reduce((t, sim) => t + sim.applied.length, 0);
    const seconds = Math.max(1, Math.ceil((performance.now() - t0) / 1000));
    const throughput: Record<string, number[]> = {};
    for (const [i, sim] of sims.entries()) {
      const series = new Array<number>(seconds).fill(0);
      const startWall = Date.now() - (performance.now() - t0);
      for (const e of sim.applied) {
        const b = Math.floor((e.at - startWall) / 1000);
        if (b >= 0 && b < seconds) series[b]!++;
      }
      throughput[devices[i]!.id] = series;
    }
    const ms = (a: Date | null, b: Date | null) => (a && b ? b.getTime() - a.getTime() : null);
    return {
      name: s.name,
      ok: !o.signal?.aborted && checks.every((c) => c.ok),
      checks,
      figures: {
        throughputPerSec: Math.round(applied / (Math.max(loadMs, 1) / 1000)),
        killToResumeMs: killedAt !== null && resumedAt !== null ? Math.round(resumedAt - killedAt) : null,
        durationMs: Math.round(performance.now() - t0),
        switches: switches.map((w) => ({
          from: w.fromAgent,
          to: w.toAgent,
          epoch: w.epoch,
          reason: w.reason,
          switchingMs: ms(w.startedAt, w.drainingAt),
          drainingMs: ms(w.drainingAt, w.replayingAt),
          replayingMs: ms(w.replayingAt, w.completedAt),
          moved: w.moved,
          replayed: w.replayed,
        })),
      },
      timeline,
      throughput,
    };
  } finally {
    for (const r of runtimes.values()) if (r.alive) r.proc.kill('SIGKILL');
    for (const a of agents.values()) {
      a.kill('SIGCONT');
      a.kill('SIGKILL');
      await a.exited;
    }
    await Promise.all(sims.map((sim) => sim.close()));
    await deleteNamespace(amqpUrl, namespace, [...agents.keys()]).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  }
}
