// The benchmarks of `baton bench`: each measures baton and a baseline in the same run.
import amqp from 'amqplib';
import { Pool } from 'undici';
import { startAgent } from '../../src/agent/worker.ts';
import { createAmqpBroker } from '../../src/adapters/amqp/broker.ts';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/tools/admin.ts';
import { systemClock } from '../../src/clock.ts';
import { startDeviceSimulator } from '../../src/devices/simulator.ts';
import { silentLogger } from '../../src/logger.ts';
import { createManagementApi } from '../../src/adapters/amqp/management-api.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { failover } from './failover.ts';
import { handoverPlanned } from './handover.ts';
import { alternate, measured, type BenchContext, type Benchmark } from './harness.ts';
import { memory } from './memory.ts';
import { serveThroughput } from './serve-throughput.ts';
import { appliedTotal, benchKey, benchSecret, msg, plainConsumer, plainMessage, result, sizeOf, tag } from './support.ts';

/** baton end to end: runtime + one in-process agent; returns msg/s from first dispatch to last device 2xx. */
async function batonThroughput(ctx: BenchContext, o: { devices: number; latencyMs: number; messages: number }): Promise<number> {
  const sims = await Promise.all(Array.from({ length: o.devices }, () => startDeviceSimulator({ faults: { latencyMs: o.latencyMs } })));
  const devices = sims.map((s, i) => ({ id: `d${i}`, url: s.url, fencesByEpoch: true }));
  const namespace = `bench-${tag()}`;
  const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
  const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace, secret: benchSecret });
  await runtime.start();
  const agent = await startAgent({ id: 'bench', devices, amqpUrl: ctx.amqpUrl, namespace, key: benchKey('bench'), prefetch: 2000 });
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
  const queue = `bench-plain-${tag()}`;
  const consumer = await plainConsumer(ctx.amqpUrl, queue, sims.map((s) => s.url), { prefetch: o.prefetch, connections: o.prefetch });
  const conn = await amqp.connect(ctx.amqpUrl);
  try {
    const pub = await conn.createConfirmChannel();
    const t0 = performance.now();
    for (let i = 0; i < o.messages; i++) pub.sendToQueue(queue, plainMessage(i % o.devices, i), { persistent: true });
    await pub.waitForConfirms();
    await appliedTotal(sims, o.messages);
    return Math.round(o.messages / ((performance.now() - t0) / 1000));
  } finally {
    await conn.close();
    await consumer.close();
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
        const runtime = createRuntime({ devices: ['d0'], amqpUrl: ctx.amqpUrl, databaseUrl, namespace: `bench-${tag()}`, secret: benchSecret, parkBatchSize: grouped ? 1000 : 1 });
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
      const management = createManagementApi(ctx.managementUrl);
      const once = async (via: 'client' | 'shovel') => {
        const namespace = `bench-${tag()}`;
        const broker = createAmqpBroker({ url: ctx.amqpUrl, namespace, queueType: 'classic', maxUnconfirmed: 5000, connectAttempts: 1, reconnectInitialMs: 100, reconnectMaxMs: 100, clock: systemClock, logger: silentLogger() });
        await broker.start();
        try {
          const from = await broker.assertAgentQueue('old');
          const to = await broker.assertAgentQueue('new');
          await Promise.all(Array.from({ length: depth }, (_, i) => broker.publish(from, { deviceId: 'd0', seq: i + 1, method: 'PUT', path: '/p', body: null })));
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
          const consumer = await plainConsumer(ctx.amqpUrl, namespace, [sim.url], { prefetch: 32, connections: 4 });
          const conn = await amqp.connect(ctx.amqpUrl);
          const pub = await conn.createConfirmChannel();
          send = (i) => void pub.sendToQueue(namespace, plainMessage(0, i), { persistent: true });
          close = async () => {
            await conn.close();
            await consumer.close();
          };
        } else {
          const runtime = createRuntime({ devices, amqpUrl: ctx.amqpUrl, databaseUrl, namespace, secret: benchSecret });
          await runtime.start();
          const agent = await startAgent({ id: 'bench', devices, amqpUrl: ctx.amqpUrl, namespace, key: benchKey('bench') });
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
  failover('kill'),
  failover('hang'),
  handoverPlanned(),
  memory(),
  serveThroughput(),
];
