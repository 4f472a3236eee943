// handover-planned: the stream moves from one consumer to another on purpose under 1,000 msg/s, three
// ways in the same run: baton's planned handover (`runtime.handover()`: the active agent finishes what
// is on the wire and gives its lease back), baton's failover after kill -9 of the active agent, and
// RabbitMQ's single active consumer on a quorum queue when the active consumer is cancelled (its
// planned consumer change: the consumer finishes and acks what it holds, the other one takes over).
// The figure is the stream's pause at the device: from the last write before the change to the first
// write after it. Also counted: duplicates (a seq written twice), stale writes (the old consumer
// writing after the new one began), lost messages. All three write to a device that does NOT refuse
// stale epochs, so a stale write would be applied and show, and baton's failover has to wait out the
// old agent's lease. baton runs with its default timings and the management API set (README). The
// device runs in a process of its own (device-process.ts), as a real device is another host: the
// times are the device's own, taken as it applies each write.
import amqp from 'amqplib';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { ActionResult } from '../../src/api.ts';
import { checkDevice } from '../../src/devices/checker.ts';
import type { AppliedEntry } from '../../src/devices/model.ts';
import { measured, type BenchContext, type Benchmark } from './harness.ts';
import { batonPair, bounded, deviceProcess, msg, pace, result, sizeOf, tag } from './support.ts';

const HEARTBEAT_S = 5;
/** how long the change may take before a run is counted stalled, ms */
const CHANGE_BOUND_MS = 30_000;
/** how long the rest of the load may take to arrive after the change, ms (what is lost never does) */
const REST_BOUND_MS = 20_000;

type Way = 'planned' | 'kill' | 'sac';

interface Run {
  /** ms between the last write before the change and the first after it (CHANGE_BOUND_MS when it stalled) */
  pause: number;
  duplicates: number;
  stale: number;
  lost: number;
  /** baton's planned handover fell back to fencing (the old agent did not give its lease back) */
  fellBack?: boolean;
}

/** The pause around the change away from `old` (the device's own times), and what its log says of duplicates, stale writes and losses. */
function judge(applied: AppliedEntry[], old: number, expected: number[]): Run {
  const first = applied.findIndex((w) => w.epoch !== old);
  const pause = first > 0 ? applied[first]!.at - applied[first - 1]!.at : CHANGE_BOUND_MS;
  const c = checkDevice('d0', applied.map((e) => e.seq), expected);
  const stale = first < 0 ? 0 : applied.slice(first).filter((e) => e.epoch === old).length;
  return { pause, duplicates: c.duplicates, stale, lost: c.missing };
}

/** baton: a runtime here, two agents as processes; at `at` the active one is handed over (planned) or killed (kill). */
async function baton(ctx: BenchContext, way: 'planned' | 'kill', messages: number, at: number): Promise<Run> {
  const device = await deviceProcess();
  const { runtime, agents, second, close } = await batonPair(ctx, [{ id: 'd0', url: device.url, fencesByEpoch: false }]);
  const seqs: number[] = [];
  let handover: Promise<ActionResult | Error> = Promise.resolve(new Error('not asked'));
  try {
    await Promise.race([runtime.ready({ timeoutMs: CHANGE_BOUND_MS }), bounded(CHANGE_BOUND_MS, 'no agent active')]);
    await Promise.race([second(), bounded(CHANGE_BOUND_MS, 'agent k2 not heard')]);
    // k1 writes (it holds a lease) before the load starts: the pause measured is the change's alone
    const warm = await runtime.dispatch(msg('d0', -1));
    await Promise.race([runtime.applied(warm, { timeoutMs: CHANGE_BOUND_MS }), bounded(CHANGE_BOUND_MS, 'no first write')]);
    seqs.push(warm.seq);
    await pace(messages, at, (i) => runtime.dispatch(msg('d0', i)).then((x) => seqs.push(x.seq)), () => {
      if (way === 'planned') handover = runtime.handover({ to: 'k2', by: 'bench' }).catch((e: Error) => e);
      else agents[0]!.kill('SIGKILL');
    });
    const done = way === 'planned' ? await Promise.race([handover, bounded(CHANGE_BOUND_MS, 'the handover did not complete').catch((e: Error) => e)]) : null;
    await runtime.drained({ timeoutMs: REST_BOUND_MS }).catch(() => {}); // what is lost never comes: judged below
    const run = judge(await device.log(), 1, seqs);
    if (done) run.fellBack = done instanceof Error || !/gave its lease back/.test(done.detail);
    return run;
  } finally {
    await close();
    await device.close();
  }
}

/** RabbitMQ single active consumer: two consumer processes; at `at` the active one cancels its consumer (SIGUSR2). */
async function sac(ctx: BenchContext, messages: number, at: number): Promise<Run> {
  const device = await deviceProcess();
  const queue = `bench-sac-${tag()}`;
  const consumer = fileURLToPath(new URL('./sac-consumer.ts', import.meta.url));
  const procs = ['1', '2'].map((no) => spawn(process.execPath, ['--import', 'tsx', consumer, ctx.amqpUrl, queue, device.url, no, String(HEARTBEAT_S)], { stdio: ['ignore', 'pipe', 'inherit'] }));
  await Promise.all(procs.map((p) => new Promise((r) => p.stdout!.once('data', r))));
  const conn = await amqp.connect(ctx.amqpUrl);
  const pub = await conn.createConfirmChannel();
  let active = 1;
  try {
    await pace(
      messages,
      at,
      (i) => new Promise((res) => pub.sendToQueue(queue, Buffer.from(String(i)), { persistent: true }, res)),
      () => {
        // the active consumer is the one writing (it tags its writes with its number)
        void device.log().then((log) => {
          active = log.at(-1)?.epoch ?? 1;
          procs[active - 1]!.kill('SIGUSR2');
        });
      },
    );
    // the consumers tell nothing: the device's log is read until it has them all (or the bound)
    for (const end = Date.now() + REST_BOUND_MS; Date.now() < end && (await device.log()).length < messages; ) await new Promise((r) => setTimeout(r, 50));
    return judge(await device.log(), active, Array.from({ length: messages }, (_, i) => i));
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await pub.deleteQueue(queue).catch(() => {});
    await conn.close();
    await device.close();
  }
}

export function handoverPlanned(): Benchmark {
  return {
    name: 'handover-planned',
    describe: 'the stream moved on purpose under 1,000 msg/s: pause at the device and duplicates; baton planned handover vs baton kill -9 failover vs single active consumer (consumer cancelled)',
    async run(ctx) {
      const messages = sizeOf(ctx, 600, 4000);
      const at = Math.floor(messages * 0.4);
      const runs: Record<Way, Run[]> = { planned: [], kill: [], sac: [] };
      // the three ways in turn, the first of each round rotating (no way always runs on a cold broker)
      const ways: Way[] = ['sac', 'planned', 'kill'];
      for (let r = 0; r < ctx.runs; r++) {
        for (let k = 0; k < ways.length; k++) {
          const way = ways[(r + k) % ways.length]!;
          runs[way].push(way === 'sac' ? await sac(ctx, messages, at) : await baton(ctx, way, messages, at));
        }
      }
      const pauses = (w: Way) => runs[w].map((x) => x.pause);
      const sum = (w: Way, k: 'duplicates' | 'stale' | 'lost') => runs[w].reduce((t, x) => t + x[k], 0);
      const line = (label: string, w: Way) => {
        const m = measured(pauses(w), 'ms');
        return `${label}: pause ${m.median} ms (${m.min}–${m.max}); over ${runs[w].length} run(s): duplicates ${sum(w, 'duplicates')}, stale writes ${sum(w, 'stale')}, lost ${sum(w, 'lost')}`;
      };
      const fellBack = runs.planned.filter((x) => x.fellBack).length;
      const clean = sum('planned', 'duplicates') === 0 && sum('planned', 'stale') === 0 && sum('planned', 'lost') === 0 && fellBack === 0;
      return result('handover-planned', 'single active consumer, consumer cancelled', pauses('sac'), pauses('planned'), 'ms', '≤ 50 ms median, zero duplicates, zero stale writes', (_, o) => o <= 50 && clean, [
        line('baton planned handover', 'planned'),
        line('baton failover after kill -9 (same device, same load)', 'kill'),
        line('single active consumer, active consumer cancelled', 'sac'),
        ...(fellBack ? [`the planned handover fell back to fencing in ${fellBack} run(s) (the old agent did not give its lease back in time)`] : []),
        'the device does not refuse stale epochs: a stale write would be applied (and counted); baton\'s failover waits out the old lease, its planned handover does not need to',
      ]);
    },
  };
}
