// The benchmarks of `baton bench`: each measures baton and a baseline in the same run.
import amqp from 'amqplib';
import { Pool } from 'undici';
import { randomBytes } from 'node:crypto';
import { startAgent } from '../../src/agent-worker.ts';
import { createAmqpBroker } from '../../src/amqp-broker.ts';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/admin.ts';
import { systemClock } from '../../src/clock.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/device-simulator.ts';
import { silentLogger } from '../../src/logger.ts';
import { createManagementApi } from '../../src/management-api.ts';
import { createRuntime } from '../../src/runtime.ts';
import { checkDevice } from '../../src/checker.ts';
import { spawnAgent, writeDevicesFile } from '../../src/processes.ts';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { alternate, measured, type BenchContext, type BenchResult, type Benchmark } from './harness.ts';

const sizeOf = (ctx: BenchContext, tiny: number, full: number) => (ctx.size === 'tiny' ? tiny : full);
const tag = () => randomBytes(3).toString('hex');
const msg = (deviceId: string, i: number) => ({ deviceId, method: 'PUT' as const, path: `/policies/p${i}`, body: { i } });

/** Rejects after `ms`: a benchmark never hangs. */
const bounded = (ms: number, what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref());

/** Resolves once the simulators together applied `n` writes. */
function appliedTotal(sims: DeviceSimulator[], n: number): Promise<void> {
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

/** baton end to end: runtime + one in-process agent; returns msg/s from first dispatch to last device 2xx. */
async function batonThroughput(ctx: BenchContext, o: { devices: number; latencyMs: number; messages: number }): Promise<number> {
  const sims = await Promise.all(Array.from({ length: o.devices }, () => startDeviceSimulator({ faults: { latencyMs: o.latencyMs } })));
  const devices = sims.map((s, i) => ({ id: `d${i}`, url: s.url, fencesByEpoch: true }));
  const namespace = `bench-${tag()}`;
  const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
  const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace });
  await runtime.start();
  const agent = await startAgent({ id: 'bench', devices, amqpUrl: ctx.amqpUrl, namespace, prefetch: 2000 });
  try {
    await runtime.ready();
    const t0 = performance.now();
    const all: Promise<unknown>[] = [];
    for (let i = 0; i < o.messages; i++) all.push(runtime.dispatch(msg(devices[i % devices.length]!.id, i)));
    await Promise.all(all);
    await appliedTotal(sims, o.messages);
    return Math.round(o.messages / ((performance.now() - t0) / 1000));
  } finally {
    await runtime.stop();
    await agent.stop();
    await Promise.all(sims.map((s) => s.close()));
    await deleteNamespace(ctx.amqpUrl, namespace, ['bench']).catch(() => {});
    await dropDatabase(databaseUrl).catch(() => {});
  }
}

/** The plain pipeline: publish with confirms, one consumer (prefetch) POSTing each message with undici. */
async function plainThroughput(ctx: BenchContext, o: { devices: number; latencyMs: number; messages: number; prefetch: number }): Promise<number> {
  const sims = await Promise.all(Array.from({ length: o.devices }, () => startDeviceSimulator({ faults: { latencyMs: o.latencyMs } })));
  const pools = sims.map((s) => new Pool(s.url, { connections: o.prefetch }));
  const conn = await amqp.connect(ctx.amqpUrl);
  const queue = `bench-plain-${tag()}`;
  try {
    const pub = await conn.createConfirmChannel();
    await pub.assertQueue(queue, { durable: true });
    const sub = await conn.createChannel();
    await sub.prefetch(o.prefetch);
    await sub.consume(queue, (m) => {
      if (!m) return;
      const { d, i } = JSON.parse(m.content.toString()) as { d: number; i: number };
      pools[d]!.request({ method: 'PUT', path: `/policies/p${i}`, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' } })
        .then((r) => r.body.dump())
        .then(() => sub.ack(m));
    });
    const t0 = performance.now();
    for (let i = 0; i < o.messages; i++) pub.sendToQueue(queue, Buffer.from(JSON.stringify({ d: i % o.devices, i })), { persistent: true });
    await pub.waitForConfirms();
    await appliedTotal(sims, o.messages);
    return Math.round(o.messages / ((performance.now() - t0) / 1000));
  } finally {
    const ch = await conn.createChannel();
    await ch.deleteQueue(queue);
    await conn.close();
    await Promise.all(pools.map((p) => p.close()));
    await Promise.all(sims.map((s) => s.close()));
  }
}

/** The physical ceiling of the device stage: serial POSTs, nothing else. */
async function serialPosts(messages: number): Promise<number> {
  const sim = await startDeviceSimulator();
  const pool = new Pool(sim.url, { connections: 1 });
  try {
    const t0 = performance.now();
    for (let i = 0; i < messages; i++) {
      const r = await pool.request({ method: 'PUT', path: `/policies/p${i}`, body: JSON.stringify({ i }), headers: { 'content-type': 'application/json' } });
      await r.body.dump();
    }
    return Math.round(messages / ((performance.now() - t0) / 1000));
  } finally {
    await pool.close();
    await sim.close();
  }
}

function result(name: string, label: string, base: number[], ours: number[], unit: string, target: string, met: (b: number, o: number) => boolean, notes: string[] = []): BenchResult {
  const baseline = { ...measured(base, unit), label };
  const baton = measured(ours, unit);
  const ratio = baseline.median === 0 ? 0 : baton.median / baseline.median;
  return { name, baseline, baton, ratio, target, met: met(baseline.median, baton.median), notes };
}

export const benchmarks: Benchmark[] = [
  {
    name: 'throughput-one-device',
    describe: 'instant device: baton end to end vs plain amqplib consumer (prefetch 32) + undici POST; serial POSTs as the ceiling',
    async run(ctx) {
      const messages = sizeOf(ctx, 200, 5000);
      const { base, ours } = await alternate(ctx.runs, () => plainThroughput(ctx, { devices: 1, latencyMs: 0, messages, prefetch: 32 }), () => batonThroughput(ctx, { devices: 1, latencyMs: 0, messages }));
      const ceiling = await serialPosts(messages);
      return result('throughput-one-device', 'plain amqplib+undici', base, ours, 'msg/s', 'baton ≥ 1.0× plain', (b, o) => o >= b, [
        `serial POST-only ceiling: ${ceiling} msg/s (one request at a time to one device: what FIFO per device allows at most)`,
        'the plain pipeline sends up to 32 requests to the device at once and does not keep their order',
      ]);
    },
  },
  {
    name: 'throughput-devices',
    describe: '5 ms devices: baton lanes (one request per device, devices in parallel) vs the single serial line, at 1, 4, 16, 64 devices',
    async run(ctx) {
      const per = sizeOf(ctx, 20, 100);
      const counts = ctx.size === 'tiny' ? [1, 4] : [1, 4, 16, 64];
      // the target compares 16 devices (the largest count in a tiny run) with one device
      const key = counts.includes(16) ? 16 : counts.at(-1)!;
      const figures: string[] = [];
      const medians = new Map<number, number>();
      let keyRuns = { base: [] as number[], ours: [] as number[] };
      for (const n of counts) {
        const runs = n === key ? ctx.runs : 1;
        const r = await alternate(runs, () => plainThroughput(ctx, { devices: n, latencyMs: 5, messages: per * n, prefetch: 1 }), () => batonThroughput(ctx, { devices: n, latencyMs: 5, messages: per * n }));
        medians.set(n, measured(r.ours, 'msg/s').median);
        figures.push(`${n} device(s): baton ${medians.get(n)} msg/s, serial line ${measured(r.base, 'msg/s').median} msg/s`);
        if (n === key) keyRuns = r;
      }
      const scale = medians.get(1) ? medians.get(key)! / medians.get(1)! : 0;
      const base16 = keyRuns.base;
      const ours16 = keyRuns.ours;
      return result('throughput-devices', 'serial line (prefetch 1)', base16, ours16, 'msg/s', '16 devices ≥ 12× one device', () => scale >= 12, [...figures, `scaling ${key} vs 1 device: ${scale.toFixed(1)}×`]);
    },
  },
  {
    name: 'parking',
    describe: 'messages parked per second (no agent: every message parks) vs one INSERT per message',
    async run(ctx) {
      const messages = sizeOf(ctx, 500, 20000);
      const park = async (grouped: boolean) => {
        const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
        const runtime = createRuntime({ devices: ['d0'], amqpUrl: ctx.amqpUrl, databaseUrl, namespace: `bench-${tag()}`, parkBatchSize: grouped ? 1000 : 1 });
        await runtime.start();
        try {
          const t0 = performance.now();
          await Promise.all(Array.from({ length: messages }, (_, i) => runtime.dispatch(msg('d0', i))));
          return Math.round(messages / ((performance.now() - t0) / 1000));
        } finally {
          await runtime.stop();
          await dropDatabase(databaseUrl).catch(() => {});
        }
      };
      const { base, ours } = await alternate(ctx.runs, () => park(false), () => park(true));
      return result('parking', 'one row per transaction', base, ours, 'msg/s', '≥ 20,000 msg/s', (_, o) => o >= 20000, ['group commit: rows that arrive while a transaction runs join the next one (parkBatchSize 1000)']);
    },
  },
  {
    name: 'move-depth',
    describe: 'time to move a deep queue to the new agent: client-side move vs dynamic shovel',
    async run(ctx) {
      const depth = sizeOf(ctx, 1000, 100_000);
      const management = createManagementApi('http://guest:guest@127.0.0.1:15672');
      const once = async (via: 'client' | 'shovel') => {
        const namespace = `bench-${tag()}`;
        const broker = createAmqpBroker({ url: ctx.amqpUrl, namespace, queueType: 'classic', maxUnconfirmed: 5000, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger: silentLogger() });
        await broker.start();
        try {
          const from = await broker.assertAgentQueue('old');
          const to = await broker.assertAgentQueue('new');
          await Promise.all(Array.from({ length: depth }, (_, i) => broker.publish(from, { deviceId: 'd0', seq: i + 1, epoch: 1, method: 'PUT', path: '/p', body: null })));
          const t0 = performance.now();
          if (via === 'client') await broker.move(from, to);
          else await management.shovel(`bench-${namespace}`, from, to, { pollMs: 20, sleep: (ms) => new Promise((r) => setTimeout(r, ms)) });
          for (;;) {
            const info = await broker.queueInfo(to);
            if ((info?.messages ?? 0) >= depth) break;
            await new Promise((r) => setTimeout(r, 10));
          }
          return Math.round(performance.now() - t0);
        } finally {
          await broker.close();
          await deleteNamespace(ctx.amqpUrl, namespace, ['old', 'new']).catch(() => {});
        }
      };
      const { base, ours } = await alternate(ctx.runs, () => once('shovel'), () => once('client'));
      const best = Math.min(measured(base, 'ms').median, measured(ours, 'ms').median);
      return result('move-depth', 'dynamic shovel', base, ours, 'ms', `${depth} in ≤ ${depth >= 100_000 ? 5000 : Math.round((5000 * depth) / 100_000)} ms`, () => best <= (5000 * depth) / 100_000, [`${depth} persistent messages; baton uses the shovel when managementUrl is set, else the client-side move`]);
    },
  },
  {
    name: 'latency',
    describe: 'dispatch → device 2xx at 500 msg/s: p50 and p99, baton vs the plain pipeline',
    async run(ctx) {
      const messages = sizeOf(ctx, 100, 5000);
      const measure = async (plain: boolean) => {
        const sim = await startDeviceSimulator();
        const sent = new Map<number, number>();
        const lat: number[] = [];
        sim.events.on('applied', (e: { path: string }) => {
          const i = Number(e.path.slice('/policies/p'.length));
          lat.push(performance.now() - sent.get(i)!);
        });
        const devices = [{ id: 'd0', url: sim.url, fencesByEpoch: true }];
        const namespace = `bench-${tag()}`;
        const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
        let close: () => Promise<void>;
        let send: (i: number) => void;
        if (plain) {
          const conn = await amqp.connect(ctx.amqpUrl);
          const pub = await conn.createConfirmChannel();
          const q = (await pub.assertQueue(namespace, { durable: true })).queue;
          const sub = await conn.createChannel();
          await sub.prefetch(32);
          const pool = new Pool(sim.url, { connections: 4 });
          await sub.consume(q, (m) => {
            if (!m) return;
            const i = Number(m.content.toString());
            void pool.request({ method: 'PUT', path: `/policies/p${i}`, body: '{}', headers: { 'content-type': 'application/json' } }).then((r) => r.body.dump()).then(() => sub.ack(m));
          });
          send = (i) => void pub.sendToQueue(q, Buffer.from(String(i)), { persistent: true });
          close = async () => {
            await pub.deleteQueue(q);
            await conn.close();
            await pool.close();
          };
        } else {
          const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace });
          await runtime.start();
          const agent = await startAgent({ id: 'bench', devices, amqpUrl: ctx.amqpUrl, namespace });
          await runtime.ready();
          send = (i) => void runtime.dispatch(msg('d0', i));
          close = async () => {
            await runtime.stop();
            await agent.stop();
            await deleteNamespace(ctx.amqpUrl, namespace, ['bench']).catch(() => {});
            await dropDatabase(databaseUrl).catch(() => {});
          };
        }
        const t0 = performance.now();
        for (let i = 0; i < messages; i++) {
          const wait = t0 + i * 2 - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          sent.set(i, performance.now());
          send(i);
        }
        await appliedTotal([sim], messages);
        await close();
        await sim.close();
        lat.sort((a, b) => a - b);
        return { p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! };
      };
      const base: number[] = [];
      const ours: number[] = [];
      const p50s: string[] = [];
      for (let r = 0; r < ctx.runs; r++) {
        const b = await measure(true);
        const o = await measure(false);
        base.push(Math.round(b.p99 * 100) / 100);
        ours.push(Math.round(o.p99 * 100) / 100);
        p50s.push(`run ${r + 1}: p50 plain ${b.p50.toFixed(2)} ms, baton ${o.p50.toFixed(2)} ms`);
      }
      return result('latency', 'plain amqplib+undici p99', base, ours, 'ms (p99)', 'p99 ≤ 3 ms', (_, o) => o <= 3, p50s);
    },
  },
  {
    name: 'failover-kill',
    describe: 'kill -9 of the active agent under 1,000 msg/s: time to the first delivery by the next one; baton vs single active consumer (quorum queue, two consumers)',
    async run(ctx) {
      const messages = sizeOf(ctx, 600, 4000);
      const killAt = Math.floor(messages * 0.4);
      let sacStalls = 0;
      const counts = { baton: { lost: 0, duplicates: 0, reordered: 0 }, sac: { lost: 0, duplicates: 0, reordered: 0 } };
      const firstAfter = (sim: DeviceSimulator, isNext: (epoch: number | null) => boolean) =>
        new Promise<number>((resolve) => {
          const on = (e: { epoch: number | null }) => {
            if (!isNext(e.epoch)) return;
            sim.events.off('applied', on);
            resolve(performance.now());
          };
          sim.events.on('applied', on);
        });
      const pace = async (send: (i: number) => Promise<unknown>, onKill: () => void) => {
        const t0 = performance.now();
        const all: Promise<unknown>[] = [];
        for (let i = 0; i < messages; i++) {
          const wait = t0 + i - performance.now();
          if (wait > 1) await new Promise((r) => setTimeout(r, wait));
          if (i === killAt) onKill();
          all.push(send(i));
        }
        return Promise.all(all);
      };
      const sac = async () => {
        const sim = await startDeviceSimulator();
        const queue = `bench-sac-${tag()}`;
        const consumer = fileURLToPath(new URL('./sac-consumer.ts', import.meta.url));
        const procs = ['1', '2'].map((no) => spawn(process.execPath, ['--import', 'tsx', consumer, ctx.amqpUrl, queue, sim.url, no], { stdio: ['ignore', 'pipe', 'inherit'] }));
        await Promise.all(procs.map((p) => new Promise((r) => p.stdout!.once('data', r))));
        const conn = await amqp.connect(ctx.amqpUrl);
        const pub = await conn.createConfirmChannel();
        let killedAt = 0;
        let next: Promise<number> = Promise.resolve(0);
        try {
          await pace(
            (i) => new Promise((res) => pub.sendToQueue(queue, Buffer.from(String(i)), { persistent: true }, res)),
            () => {
              // the active consumer is the one writing (it tags its writes with its number)
              const active = sim.applied.at(-1)?.epoch ?? 1;
              next = firstAfter(sim, (epoch) => epoch !== active);
              killedAt = performance.now();
              procs[active - 1]!.kill('SIGKILL');
            },
          );
          const ms = await Promise.race([next, bounded(30_000, 'no write by the other consumer')]).then(
            (at) => at - killedAt,
            () => (sacStalls++, 30_000), // reported as 30 s, and counted below
          );
          // whatever single active consumer lost never arrives: wait a bounded time
          await Promise.race([appliedTotal([sim], messages), new Promise((r) => setTimeout(r, 15_000))]);
          const c = checkDevice('sac', sim.applied.map((e) => e.seq), Array.from({ length: messages }, (_, i) => i));
          counts.sac = { lost: c.missing, duplicates: c.duplicates, reordered: c.outOfOrder };
          return Math.round(ms);
        } finally {
          for (const p of procs) p.kill('SIGKILL');
          await pub.deleteQueue(queue).catch(() => {});
          await conn.close();
          await sim.close();
        }
      };
      const baton = async () => {
        const sim = await startDeviceSimulator();
        const devices = [{ id: 'd0', url: sim.url, fencesByEpoch: true }];
        const namespace = `bench-${tag()}`;
        const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
        const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace });
        await runtime.start();
        const file = writeDevicesFile(devices);
        const spawnK = (id: string) => spawnAgent({ id, devicesFile: file, amqpUrl: ctx.amqpUrl, namespace, logLevel: 'error' });
        const agents = [spawnK('k1')];
        const seqs: number[] = [];
        try {
          await runtime.ready();
          const second = new Promise<void>((r) => runtime.on('agent.registered', (e) => e.agentId === 'k2' && r()));
          agents.push(spawnK('k2'));
          await second;
          let killedAt = 0;
          const next = firstAfter(sim, (epoch) => (epoch ?? 0) > 1);
          await pace(
            (i) => runtime.dispatch(msg('d0', i)).then((x) => seqs.push(x.seq)),
            () => {
              killedAt = performance.now();
              agents[0]!.kill('SIGKILL');
            },
          );
          const ms = (await Promise.race([next, bounded(30_000, 'baton: no write under a new epoch')])) - killedAt;
          await Promise.race([appliedTotal([sim], messages), new Promise((r) => setTimeout(r, 30_000))]);
          const c = checkDevice('baton', sim.applied.map((e) => e.seq), seqs);
          counts.baton = { lost: c.missing, duplicates: c.duplicates, reordered: c.outOfOrder };
          return Math.round(ms);
        } finally {
          await runtime.stop();
          for (const a of agents) a.kill('SIGKILL');
          await Promise.all(agents.map((a) => a.exited));
          await sim.close();
          await deleteNamespace(ctx.amqpUrl, namespace, ['k1', 'k2']).catch(() => {});
          await dropDatabase(databaseUrl).catch(() => {});
        }
      };
      const { base, ours } = await alternate(ctx.runs, sac, baton);
      const clean = counts.baton.lost === 0 && counts.baton.reordered === 0;
      return result('failover-kill', 'single active consumer', base, ours, 'ms', '≤ 300 ms median, no loss, no reorder', (_, o) => o <= 300 && clean, [
        `last run, baton: lost ${counts.baton.lost}, duplicates ${counts.baton.duplicates}, reordered ${counts.baton.reordered}`,
        ...(sacStalls ? [`single active consumer did not move to the other consumer within 30 s in ${sacStalls} run(s) (counted as 30,000 ms)`] : []),
        `last run, single active consumer: lost ${counts.sac.lost}, duplicates ${counts.sac.duplicates}, reordered ${counts.sac.reordered} (it redelivers the unacked message: no fencing, no watermark)`,
      ]);
    },
  },
];
