// failover-kill and failover-hang: the active agent is killed (SIGKILL) or stopped (SIGSTOP, then
// SIGCONT once the load is through) under 1,000 msg/s; the figure is the time from the signal to the
// first write by the next agent. Baseline: RabbitMQ's single active consumer on a quorum queue with
// two consumers (5 s AMQP heartbeat, as baton's agents), writing to a device that does not fence.
// baton runs with its default timings and the management API set, as README recommends: it fences
// the old agent by closing its broker connection, which returns the messages it held.
import amqp from 'amqplib';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkDevice } from '../../src/devices/checker.ts';
import { startDeviceSimulator, type AppliedEntry, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { alternate, type Benchmark } from './harness.ts';
import { appliedTotal, batonPair, bounded, msg, pace, result, sizeOf, tag } from './support.ts';

const HEARTBEAT_S = 5;
/** how long the resumed agent is watched for writes after SIGCONT, ms */
const RESUMED_WATCH_MS = 3000;

interface Counts {
  lost: number;
  duplicates: number;
  reordered: number;
  /** writes the device accepted from the old agent after the new one had written */
  stale: number;
  /** writes from the old agent the device refused by epoch */
  fenced: number;
}
const none = (): Counts => ({ lost: 0, duplicates: 0, reordered: 0, stale: 0, fenced: 0 });

/** Resolves with the time of the first write for which `isNext(epoch)` holds. */
function firstAfter(sim: DeviceSimulator, isNext: (epoch: number | null) => boolean): Promise<number> {
  return new Promise<number>((resolve) => {
    const on = (e: AppliedEntry) => {
      if (!isNext(e.epoch)) return;
      sim.events.off('applied', on);
      resolve(performance.now());
    };
    sim.events.on('applied', on);
  });
}

/** Writes by `old` accepted after the first write by anyone else. */
function writesAfterTakeover(applied: readonly AppliedEntry[], old: number): number {
  const first = applied.findIndex((e) => e.epoch !== old);
  return first < 0 ? 0 : applied.slice(first).filter((e) => e.epoch === old).length;
}

export function failover(kind: 'kill' | 'hang'): Benchmark {
  const name = `failover-${kind}`;
  const signal: NodeJS.Signals = kind === 'kill' ? 'SIGKILL' : 'SIGSTOP';
  const targetMs = kind === 'kill' ? 300 : 3000;
  return {
    name,
    describe:
      kind === 'kill'
        ? 'kill -9 of the active agent under 1,000 msg/s: time to the first delivery by the next one; baton vs single active consumer (quorum queue, two consumers)'
        : 'SIGSTOP of the active agent under 1,000 msg/s, SIGCONT after: time to the first delivery by the next one and stale writes after SIGCONT; baton vs single active consumer (5 s heartbeat)',
    async run(ctx) {
      const messages = sizeOf(ctx, 600, 4000);
      const stopAt = Math.floor(messages * 0.4);
      const stalls = { sac: 0, baton: 0 };
      /** per baton run: how long the switch stayed in replaying while the load went on (from the switches table) */
      const replayingMs: number[] = [];
      const counts = { baton: none(), sac: none() };
      const takeoverBound = kind === 'kill' ? 30_000 : 60_000;

      /** Waits for the takeover, the rest of the load, and (hang) watches the resumed agent. */
      const finish = async (side: 'sac' | 'baton', sim: DeviceSimulator, next: Promise<number>, stoppedAt: number, resume: () => void, expected: number[], old: number) => {
        const ms = await Promise.race([next, bounded(takeoverBound, 'no write by the next consumer')]).then(
          (at) => at - stoppedAt,
          () => (stalls[side]++, takeoverBound),
        );
        // what is lost never arrives: wait a bounded time
        await Promise.race([appliedTotal([sim], messages), new Promise((r) => setTimeout(r, 20_000))]);
        if (kind === 'hang') {
          const fencedBefore = sim.fencedWrites;
          resume();
          await new Promise((r) => setTimeout(r, RESUMED_WATCH_MS));
          counts[side].fenced = sim.fencedWrites - fencedBefore;
        }
        const c = checkDevice(side, sim.applied.map((e) => e.seq), expected);
        counts[side] = { ...counts[side], lost: c.missing, duplicates: c.duplicates, reordered: c.outOfOrder, stale: writesAfterTakeover(sim.applied, old) };
        return Math.round(ms);
      };

      const sac = async () => {
        const sim = await startDeviceSimulator({ fencing: false });
        const queue = `bench-sac-${tag()}`;
        const consumer = fileURLToPath(new URL('./sac-consumer.ts', import.meta.url));
        const procs = ['1', '2'].map((no) => spawn(process.execPath, ['--import', 'tsx', consumer, ctx.amqpUrl, queue, sim.url, no, String(HEARTBEAT_S)], { stdio: ['ignore', 'pipe', 'inherit'] }));
        await Promise.all(procs.map((p) => new Promise((r) => p.stdout!.once('data', r))));
        const conn = await amqp.connect(ctx.amqpUrl);
        const pub = await conn.createConfirmChannel();
        let stoppedAt = 0;
        let active = 1;
        let next: Promise<number> = Promise.resolve(0);
        try {
          await pace(messages, stopAt,
            (i) => new Promise((res) => pub.sendToQueue(queue, Buffer.from(String(i)), { persistent: true }, res)),
            () => {
              // the active consumer is the one writing (it tags its writes with its number)
              active = sim.applied.at(-1)?.epoch ?? 1;
              next = firstAfter(sim, (epoch) => epoch !== active);
              stoppedAt = performance.now();
              procs[active - 1]!.kill(signal);
            },
          );
          const expected = Array.from({ length: messages }, (_, i) => i);
          return await finish('sac', sim, next, stoppedAt, () => procs[active - 1]!.kill('SIGCONT'), expected, active);
        } finally {
          for (const p of procs) p.kill('SIGKILL');
          await pub.deleteQueue(queue).catch(() => {});
          await conn.close();
          await sim.close();
        }
      };

      const baton = async () => {
        const sim = await startDeviceSimulator();
        const { runtime, agents, second, close } = await batonPair(ctx, [{ id: 'd0', url: sim.url, fencesByEpoch: true }]);
        const seqs: number[] = [];
        try {
          await runtime.ready();
          await second();
          let stoppedAt = 0;
          const next = firstAfter(sim, (epoch) => (epoch ?? 0) > 1);
          await pace(messages, stopAt,
            (i) => runtime.dispatch(msg('d0', i)).then((x) => seqs.push(x.seq)),
            () => {
              stoppedAt = performance.now();
              agents[0]!.kill(signal);
            },
          );
          const ms = await finish('baton', sim, next, stoppedAt, () => agents[0]!.kill('SIGCONT'), seqs, 1);
          const sw = (await runtime.status()).switches[0];
          if (sw?.replayingAt && sw.completedAt) replayingMs.push(sw.completedAt.getTime() - sw.replayingAt.getTime());
          return ms;
        } finally {
          await close();
          await sim.close();
        }
      };

      const { base, ours } = await alternate(ctx.runs, sac, baton);
      const clean = counts.baton.lost === 0 && counts.baton.reordered === 0 && counts.baton.stale === 0 && stalls.baton === 0;
      const line = (who: string, c: Counts) =>
        `last run, ${who}: lost ${c.lost}, duplicates ${c.duplicates}, reordered ${c.reordered}` + (kind === 'hang' ? `, stale writes accepted after SIGCONT ${c.stale}, refused by epoch ${c.fenced}` : '');
      const stalled = (who: string, n: number) => (n ? [`${who} did not move to the other consumer within ${takeoverBound / 1000} s in ${n} run(s) (counted as ${takeoverBound} ms)`] : []);
      return result(name, 'single active consumer', base, ours, 'ms', kind === 'kill' ? '≤ 300 ms median, no loss, no reorder' : '≤ 3 s median, zero stale writes', (_, o) => o <= targetMs && clean, [
        line('baton', counts.baton),
        `baton's switch in replaying under the load: ${replayingMs.length ? replayingMs.map((x) => `${x} ms`).join(', ') : 'not recorded'} (target ≤ 200 ms; it must not grow with the incoming rate)`,
        line('single active consumer', counts.sac),
        ...stalled('baton', stalls.baton),
        ...stalled('single active consumer', stalls.sac),
        'single active consumer redelivers the unacked message to the other consumer: no fencing, no watermark',
      ]);
    },
  };
}
