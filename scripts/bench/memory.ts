// memory: the RSS of a host process running baton's runtime while 1,000,000 messages pass to eight
// instant devices (agent and devices run in the benchmark process), against a host publishing the
// same messages with plain amqplib. One run of each at full size: a million messages take minutes.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startAgent } from '../../src/agent/worker.ts';
import { deleteNamespace, dropDatabase, withDatabase } from '../../src/tools/admin.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { alternate, type BenchContext, type Benchmark } from './harness.ts';
import { appliedTotal, benchKey, benchSecret, plainConsumer, result, sizeOf, tag } from './support.ts';

const DEVICES = 8;
const LIMIT_MB = 200;
/** growth allowed from the first quarter of the run to its end */
const FLAT = 0.1;

interface Sample {
  at: number;
  rssMb: number;
  heapMb: number;
}

/** Runs the host process and returns its RSS samples. */
function host(options: Record<string, unknown>): Promise<Sample[]> {
  const script = fileURLToPath(new URL('./memory-host.ts', import.meta.url));
  // the secret goes in the environment (the runtime reads BATON_SECRET), not on the command line
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, BATON_SECRET: benchSecret } });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) => {
      const line = out.trim().split('\n').at(-1) ?? '';
      if (code !== 0 || !line.startsWith('{')) reject(new Error(`memory host exited ${code}: ${out.slice(-500)}`));
      else resolve((JSON.parse(line) as { samples: Sample[] }).samples);
    }),
  );
}

const peak = (s: Sample[]) => Math.max(...s.map((x) => x.rssMb));
/** RSS at the end over RSS once a quarter of the messages passed, minus one */
const growth = (s: Sample[], messages: number) => {
  const quarter = s.find((x) => x.at >= messages / 4) ?? s[0]!;
  return s.at(-1)!.rssMb / quarter.rssMb - 1;
};

async function once(ctx: BenchContext, mode: 'baton' | 'plain', messages: number, seen: Map<string, Sample[]>): Promise<number> {
  const sims: DeviceSimulator[] = await Promise.all(Array.from({ length: DEVICES }, () => startDeviceSimulator()));
  const devices = sims.map((s, i) => ({ id: `d${i}`, url: s.url, fencesByEpoch: true }));
  const namespace = `bench-${tag()}`;
  const databaseUrl = withDatabase(ctx.databaseUrl, `baton_bench_${tag()}`);
  const queue = `bench-plain-${tag()}`;
  const cleanups: Array<() => Promise<unknown>> = [];
  try {
    if (mode === 'baton') {
      const agent = await startAgent({ id: 'mem', devices, amqpUrl: ctx.amqpUrl, namespace, key: benchKey('mem'), prefetch: 2000 });
      cleanups.push(() => agent.stop(), () => deleteNamespace(ctx.amqpUrl, namespace, ['mem']), () => dropDatabase(databaseUrl));
    } else {
      // the baseline's consumer: plain amqplib + undici, as in the throughput benchmark
      const consumer = await plainConsumer(ctx.amqpUrl, queue, sims.map((s) => s.url), { prefetch: 256, connections: 4 });
      cleanups.push(() => consumer.close());
    }
    const samples = await host({ mode, messages, devices: devices.map((d) => d.id), amqpUrl: ctx.amqpUrl, databaseUrl, namespace, queue });
    await appliedTotal(sims, messages);
    seen.set(mode, samples);
    return peak(samples);
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => {});
    await Promise.all(sims.map((s) => s.close()));
  }
}

export function memory(): Benchmark {
  return {
    name: 'memory',
    describe: `RSS of the host running baton's runtime while 1,000,000 messages pass (${DEVICES} devices), vs a host publishing them with plain amqplib`,
    async run(ctx) {
      const messages = sizeOf(ctx, 3000, 1_000_000);
      const seen = new Map<string, Sample[]>();
      const { base, ours } = await alternate(ctx.size === 'tiny' ? ctx.runs : 1, () => once(ctx, 'plain', messages, seen), () => once(ctx, 'baton', messages, seen));
      const ourGrowth = growth(seen.get('baton')!, messages);
      const trail = (mode: string) => seen.get(mode)!.filter((_, i, all) => i % 5 === 0 || i === all.length - 1).map((s) => `${s.rssMb} (heap ${s.heapMb})`).join(' → ');
      return result('memory', 'plain amqplib publisher', base, ours, 'MB (peak RSS)', `≤ ${LIMIT_MB} MB and flat (≤ ${FLAT * 100}% growth after the first quarter)`, (_, o) => o <= LIMIT_MB && ourGrowth <= FLAT, [
        `${messages} messages, one run of each side; RSS (and V8 heap in use) in MB along the run (last run)`,
        `baton: ${trail('baton')} (growth after the first quarter ${(ourGrowth * 100).toFixed(1)}%)`,
        `plain: ${trail('plain')} (growth ${(growth(seen.get('plain')!, messages) * 100).toFixed(1)}%)`,
      ]);
    },
  };
}
