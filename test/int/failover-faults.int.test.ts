// Faults that must *not* cause a failover, or that touch the whole broker: a slow agent, and a
// RabbitMQ memory alarm. One file at a time (failover project): the alarm blocks every publisher.
import { execFileSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { systemClock } from '../../src/clock.ts';
import type { Clock } from '../../src/ports.ts';
import { awaitAndCheck, dispatchLoad, startCluster, type Cluster } from '../support/cluster.ts';
import { captureLogs } from '../support/log-capture.ts';
import { AMQP_URL } from '../support/services.ts';
import { agentTrust } from '../support/trust.ts';

let cluster: Cluster | null = null;
/** puts RabbitMQ's memory watermark back, even when a test timed out mid-alarm */
let restoreAlarm: (() => void) | null = null;
afterEach(async () => {
  restoreAlarm?.();
  restoreAlarm = null;
  await cluster?.dispose();
  cluster = null;
});

const ctl = (...args: string[]) => execFileSync('rabbitmqctl', args, { stdio: 'pipe' }).toString();

describe('faults that must not lose or switch', () => {
  it('a slow agent (paused 300 ms at a time, under heartbeatTimeout) is not suspected nor failed over; all arrives in order', async () => {
    const c = (cluster = await startCluster({ devices: 2 }));
    const runtime = c.runtime();
    await runtime.start();
    const slow = c.startAgent('a1');
    await runtime.ready();
    c.startAgent('a2');
    await new Promise<void>((r) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && r()));
    let switches = 0;
    let suspicions = 0;
    runtime.on('switch.started', () => switches++);
    runtime.on('agent.suspect', () => suspicions++);
    let pausing = true;
    const pauses = (async () => {
      while (pausing) {
        slow.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 300));
        slow.kill('SIGCONT');
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    const seqs = await dispatchLoad(runtime, c.devices, 600, { concurrency: 4 });
    const checks = await awaitAndCheck(c, seqs);
    pausing = false;
    await pauses;
    expect(checks.map((x) => [x.missing, x.duplicates, x.outOfOrder])).toEqual([[0, 0, 0], [0, 0, 0]]);
    expect(switches).toBe(0);
    expect(suspicions).toBe(0); // its heartbeats are at most 550 ms apart, under heartbeatTimeout (1 s)
    expect(c.sims.flatMap((s) => s.applied.map((e) => e.epoch))).toEqual(expect.not.arrayContaining([2]));
  });

  it('a RabbitMQ memory alarm blocks dispatch() visibly (event, status, log); nothing is lost and order holds once it clears', async () => {
    const c = (cluster = await startCluster({ devices: 1 }));
    const logs = captureLogs('warn');
    const runtime = c.runtime({ logger: logs.logger });
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    const before = await dispatchLoad(runtime, c.devices, 5, { concurrency: 1 });
    const setting = JSON.parse(ctl('status', '--formatter', 'json')).vm_memory_high_watermark_setting as { relative?: number; absolute?: number };
    restoreAlarm = () => void (setting.absolute !== undefined ? ctl('set_vm_memory_high_watermark', 'absolute', String(setting.absolute)) : ctl('set_vm_memory_high_watermark', String(setting.relative ?? 0.4)));

    const blocked = runtime.once('broker.blocked');
    ctl('set_vm_memory_high_watermark', '0.00001');
    expect((await blocked).reason).toMatch(/memory/i);
    expect((await runtime.status()).brokerBlocked).toMatch(/memory/i);
    // (the alarm also holds the agents' heartbeats back: a no-healthy-agent alarm may be logged at error too)
    expect(logs.records().find((r) => r.level === 50 && /RabbitMQ blocked/.test(String(r.msg)))).toMatchObject({ msg: expect.stringMatching(/RabbitMQ blocked publishes .* nothing is dropped/), reason: expect.stringMatching(/memory/i) });
    let settled = 0;
    const during = Promise.all(Array.from({ length: 10 }, (_, k) => runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: `/policies/q${k}` }).finally(() => settled++)));
    await runtime.status(); // a round trip to PostgreSQL: the dispatches are past their seq by now
    expect(settled).toBe(0);

    const unblocked = runtime.once('broker.unblocked');
    restoreAlarm();
    restoreAlarm = null;
    await unblocked;
    const accepted = await during;
    expect((await runtime.status()).brokerBlocked).toBeNull();
    before.get('fw1')!.push(...accepted.map((a) => a.seq));
    const [check] = await awaitAndCheck(c, before);
    expect(check).toMatchObject({ missing: 0, duplicates: 0, outOfOrder: 0 });
  });

  it('wall-clock jumps (+1 h, then -2 h) in the runtime and the agent: no suspicion, no switch, leadership kept, all in order', async () => {
    const c = (cluster = await startCluster({ devices: 2 }));
    let offset = 0;
    const jumpy: Clock = { ...systemClock, now: () => Date.now() + offset };
    const runtime = c.runtime({ clock: jumpy });
    const events: string[] = [];
    for (const e of ['agent.suspect', 'agent.dead', 'switch.started', 'leader.lost'] as const) runtime.on(e, () => events.push(e));
    await runtime.start();
    const agent = await startAgent({ id: 'a1', devices: c.devices, amqpUrl: AMQP_URL, namespace: c.namespace, ...agentTrust('a1') }, { clock: jumpy });
    try {
      await runtime.ready();
      const seqs = await dispatchLoad(runtime, c.devices, 300, {
        concurrency: 2,
        onProgress: (n) => {
          if (n === 100) offset = 3_600_000;
          if (n === 200) offset = -3_600_000;
        },
      });
      const checks = await awaitAndCheck(c, seqs);
      // longer than heartbeatTimeout + hungTimeout after the last jump, under a steady monotonic clock
      await new Promise((r) => setTimeout(r, 3000));
      expect(checks.map((x) => [x.missing, x.duplicates, x.outOfOrder])).toEqual([[0, 0, 0], [0, 0, 0]]);
      expect(events).toEqual([]);
      expect((await runtime.status()).leading).toBe(true);
    } finally {
      await agent.stop();
    }
  });
});
