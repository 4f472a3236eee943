// serve-throughput: messages accepted per second over HTTP by a real `baton serve` (POST /v1/batches of
// 100, and single POST /v1/messages with 32 in flight, each with and without an Idempotency-Key)
// against the baseline, the runtime's own `dispatch()` called in-process, in the same run. "Accepted":
// the answer was 202 (dispatch() resolved): confirmed by the broker or parked. The clock runs from the
// first send to the last answer; then (untimed) the way waits until every message is applied and
// checks the devices applied them all, so the next way starts on a quiet machine.
//
// Where each part runs (a 2-core machine shared with RabbitMQ and PostgreSQL): as deployed. The
// server is a child process `baton serve` (what a Python control plane talks to), the HTTP client runs
// in the benchmark's process: a control plane is another process, and a client sharing the server's
// event loop (in-process startServer) would charge its own request building and answer parsing to
// the server. The baseline runs the runtime in the benchmark's process, as a Node host embeds it:
// caller and runtime in one process. In every way the agent is a child process (`baton agent`) and
// the devices (instant simulators) another, so neither takes time from the process measured; each
// way gets a fresh database and namespace. The client is kept cheap: bodies are serialised before the
// clock starts, undici with keep-alive connections (one per request in flight).
import { Pool } from 'undici';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/tools/admin.ts';
import { spawnAgent, spawnBaton, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { measured, type BenchContext, type Benchmark } from './harness.ts';
import { benchKey, benchSecret, bounded, deviceProcess, msg, result, sizeOf, tag } from './support.ts';

const BATCH = 100;
/** batches in flight at once (each on its own connection) */
const BATCHES_IN_FLIGHT = 8;
const SINGLES_IN_FLIGHT = 32;

type WayName = 'in-process' | 'batches' | 'batches+key' | 'single' | 'single+key';
const WAYS: WayName[] = ['in-process', 'batches', 'batches+key', 'single', 'single+key'];

interface Setup {
  devices: Array<{ id: string; url: string; fencesByEpoch: boolean }>;
  devicesFile: string;
  namespace: string;
  databaseUrl: string;
  agent: ChildHandle | null;
  appliedCount(): Promise<number>;
  close(): Promise<void>;
}

async function setUp(ctx: BenchContext, count: number): Promise<Setup> {
  const sims = await deviceProcess(count);
  const devices = sims.urls.map((url, i) => ({ id: `d${i}`, url, fencesByEpoch: true }));
  const namespace = `bench-${tag()}`;
  const s: Setup = {
    devices,
    devicesFile: writeDevicesFile(devices),
    namespace,
    databaseUrl: withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`),
    agent: null,
    appliedCount: sims.appliedCount,
    async close() {
      s.agent?.kill('SIGKILL');
      await s.agent?.exited;
      await sims.close();
      await deleteNamespace(ctx.amqpUrl, namespace, ['bench']).catch(() => {});
      await dropDatabase(s.databaseUrl).catch(() => {});
    },
  };
  return s;
}

const startAgentProcess = (ctx: BenchContext, s: Setup) =>
  (s.agent = spawnAgent({ id: 'bench', key: benchKey('bench'), devicesFile: s.devicesFile, amqpUrl: ctx.amqpUrl, namespace: s.namespace, extra: ['--prefetch', '2000'], logLevel: 'error' }));

/** Checks the devices applied every message (after the runtime said it drained). */
async function checkApplied(s: Setup, messages: number, way: WayName): Promise<void> {
  const n = await s.appliedCount();
  if (n !== messages) throw new Error(`serve-throughput ${way}: the devices applied ${n} of ${messages} messages`);
}

async function inProcess(ctx: BenchContext, s: Setup, messages: number): Promise<number> {
  const runtime = createRuntime({ devices: s.devices, amqpUrl: ctx.amqpUrl, databaseUrl: s.databaseUrl, namespace: s.namespace, managementUrl: ctx.managementUrl, secret: benchSecret });
  await runtime.start();
  try {
    startAgentProcess(ctx, s);
    await runtime.ready({ timeoutMs: 60_000 });
    const all = Array.from({ length: messages }, (_, i) => msg(s.devices[i % s.devices.length]!.id, i));
    const t0 = performance.now();
    await Promise.all(all.map((m) => runtime.dispatch(m)));
    const rate = Math.round(messages / ((performance.now() - t0) / 1000));
    await runtime.drained({ timeoutMs: 120_000 });
    await checkApplied(s, messages, 'in-process');
    return rate;
  } finally {
    await runtime.stop();
  }
}

/** POSTs `body` and checks the answer is `status`. */
async function post(pool: Pool, path: string, body: string, headers: Record<string, string> = {}, status = 202): Promise<void> {
  const r = await pool.request({ method: 'POST', path, body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await r.body.text();
  if (r.statusCode !== status) throw new Error(`serve-throughput: POST ${path} answered ${r.statusCode} (expected ${status}): ${text.slice(0, 500)}`);
}

/** Calls `send(0..count-1)` with `inFlight` calls at once, each as soon as one settles. */
async function inWindows(count: number, inFlight: number, send: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await send(i);
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, worker));
}

/** Resolves once the server's runtime has an active agent (GET /v1/status). */
async function serverReady(pool: Pool): Promise<void> {
  const until = Date.now() + 60_000;
  for (;;) {
    const r = await pool.request({ method: 'GET', path: '/v1/status' });
    const st = (await r.body.json()) as { assignment?: { phase: string; lock: number } | null };
    if (st.assignment?.phase === 'normal' && st.assignment.lock === 0) return;
    if (Date.now() > until) throw new Error('serve-throughput: the server had no active agent within 60 s');
    await new Promise((res) => setTimeout(res, 50));
  }
}

async function served(ctx: BenchContext, s: Setup, messages: number, way: Exclude<WayName, 'in-process'>): Promise<number> {
  const server = spawnBaton(['serve', '--devices', s.devicesFile, '--port', '0', '--namespace', s.namespace], {
    BATON_AMQP_URL: ctx.amqpUrl,
    BATON_DATABASE_URL: s.databaseUrl,
    BATON_MANAGEMENT_URL: ctx.managementUrl,
    BATON_SECRET: benchSecret,
    BATON_LOG_LEVEL: 'warn',
  });
  const batched = way.startsWith('batches');
  const inFlight = batched ? BATCHES_IN_FLIGHT : SINGLES_IN_FLIGHT;
  let pool: Pool | null = null;
  try {
    const [, url] = await Promise.race([server.waitForOutput(/listening on (\S+)/), bounded(60_000, 'baton serve did not listen')]);
    pool = new Pool(url!, { connections: inFlight });
    startAgentProcess(ctx, s);
    await serverReady(pool);
    const all = Array.from({ length: messages }, (_, i) => msg(s.devices[i % s.devices.length]!.id, i));
    const bodies = batched
      ? Array.from({ length: Math.ceil(messages / BATCH) }, (_, b) => JSON.stringify({ messages: all.slice(b * BATCH, (b + 1) * BATCH) }))
      : all.map((m) => JSON.stringify(m));
    const t0 = performance.now();
    const key = way.endsWith('+key') ? `k-${tag()}` : null;
    await inWindows(bodies.length, inFlight, (i) => post(pool!, batched ? '/v1/batches' : '/v1/messages', bodies[i]!, key === null ? {} : { 'idempotency-key': `${key}-${i}` }));
    const rate = Math.round(messages / ((performance.now() - t0) / 1000));
    await post(pool, '/v1/wait', JSON.stringify({ timeoutMs: 120_000 }), {}, 200);
    await checkApplied(s, messages, way);
    return rate;
  } finally {
    await pool?.close();
    server.kill('SIGTERM');
    const code = await Promise.race([server.exited, bounded(30_000, 'baton serve did not stop').catch(() => (server.kill('SIGKILL'), 'killed'))]);
    if (code !== 0) ctx.log(`serve-throughput: baton serve exited ${code}: ${server.stderr().slice(-1000)}`);
  }
}

async function once(ctx: BenchContext, way: WayName, o: { devices: number; messages: number }): Promise<number> {
  const s = await setUp(ctx, o.devices);
  try {
    return way === 'in-process' ? await inProcess(ctx, s, o.messages) : await served(ctx, s, o.messages, way);
  } finally {
    await s.close();
  }
}

export function serveThroughput(): Benchmark {
  return {
    name: 'serve-throughput',
    describe: 'messages accepted per second over HTTP by baton serve (batches of 100; single messages, 32 in flight; with and without Idempotency-Key) vs in-process dispatch()',
    async run(ctx) {
      const o = { devices: sizeOf(ctx, 4, 16), messages: sizeOf(ctx, 400, 20_000) };
      const runs = new Map<WayName, number[]>(WAYS.map((w) => [w, []]));
      for (let r = 0; r < ctx.runs; r++) {
        // each run starts with another way: none always runs first (on a cold machine) or last
        for (let i = 0; i < WAYS.length; i++) {
          const way = WAYS[(i + r) % WAYS.length]!;
          runs.get(way)!.push(await once(ctx, way, o));
          ctx.log(`serve-throughput ${way}: ${runs.get(way)!.at(-1)} msg/s`);
        }
      }
      const base = runs.get('in-process')!;
      const median = (w: WayName) => measured(runs.get(w)!, 'msg/s').median;
      const figures = WAYS.filter((w) => w !== 'in-process').map((w) => `${w}: ${median(w)} msg/s median (${runs.get(w)!.join(', ')}), ${(median(w) / median('in-process')).toFixed(2)}× in-process`);
      return result('serve-throughput', 'in-process dispatch()', base, runs.get('batches')!, 'msg/s', 'batched ≥ 0.8× in-process', (b, ours) => ours >= 0.8 * b, [
        ...figures,
        `${o.messages} messages to ${o.devices} instant devices, one agent (child process); batches of ${BATCH} with ${BATCHES_IN_FLIGHT} in flight, single messages with ${SINGLES_IN_FLIGHT} in flight; the baseline dispatches all at once`,
        'baton serve is a child process, the HTTP client runs in the benchmark process, the in-process runtime in the benchmark process (see the header of scripts/bench/serve-throughput.ts)',
      ]);
    },
  };
}
