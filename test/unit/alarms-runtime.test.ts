// The alarms of a whole runtime over the in-memory adapters and the simulated clock: the active
// agent's blocked line, a dead letter, a device whose messages wait past alarmLagMs and the death
// of the only agent each raise their alarm once (event, error log line, metrics, runtime.alarms(),
// status().alarms) and clear it once when the condition ends; stop() clears what is open.
import { describe, expect, it } from 'vitest';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import type { LaneReport } from '../../src/side-channel.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentKey, seal } from '../../src/trust.ts';
import { captureLogs } from '../support/log-capture.ts';
import { runtimeTrust, signedReceipt, TEST_SECRET } from '../support/trust.ts';

const heartbeatWith = (agentId: string, beat: number, lanes?: LaneReport[]) =>
  seal(agentKey(TEST_SECRET, agentId), 'heartbeats', agentId, { type: 'heartbeat', agentId, host: 'h', pid: 1, sentAt: 0, beat, incarnation: `${agentId}#1`, ...(lanes ? { lanes } : {}) });

const BLOCKED: LaneReport = { deviceId: 'fw1', state: 'blocked', seq: 2, status: 422, response: 'vlan 4095 is reserved', reason: 'device rejected the message (422)', since: 0 };

async function leader() {
  const world = new World(11);
  const rabbit = new MemoryRabbit('al');
  const gate = new Gate('r1');
  const logs = captureLogs('info');
  const runtime = createRuntime({
    devices: ['fw1', 'fw2'], runtimeId: 'r1', namespace: 'al', ...runtimeTrust, leaderTtl: 1500, alarmLagMs: 10_000, logger: logs.logger,
    ports: { broker: rabbit.connect({ schedule: gate.run }), store: createMemoryStore({ now: () => world.now }) }, clock: world.clock(gate),
  });
  const agent = rabbit.connect({ schedule: (f) => f() });
  await agent.start();
  await agent.consume(await agent.assertAgentQueue('a1'), () => {}, { prefetch: 100 });
  const seen: string[] = [];
  runtime.on('alarm.raised', ({ alarm }) => seen.push(`raised ${alarm.id}`));
  runtime.on('alarm.cleared', ({ alarm }) => seen.push(`cleared ${alarm.id}`));
  let beat = 0;
  const heartbeat = async (lanes?: LaneReport[]) => {
    await agent.publishEvent('heartbeats', heartbeatWith('a1', ++beat, lanes));
    await world.run(() => false, world.now + 50);
  };
  /** heartbeats every 250 ms for `ms` (the agent stays alive while time passes) */
  const live = async (ms: number, lanes?: LaneReport[]) => {
    for (let t = 0; t < ms; t += 250) {
      await agent.publishEvent('heartbeats', heartbeatWith('a1', ++beat, lanes));
      await world.run(() => false, world.now + 250);
    }
  };
  await runtime.start();
  await heartbeat();
  await world.run(() => false, world.now + 200);
  let receipts = 0;
  runtime.on('receipts.applied', () => receipts++);
  runtime.on('message.dead-lettered', () => receipts++);
  const receipt = async (r: object) => {
    const before = receipts;
    await agent.publishEvent('receipts', signedReceipt('a1', { epoch: 1, ...r }));
    await world.run(() => receipts > before, world.now + 100);
  };
  return { world, runtime, logs, seen, heartbeat, live, receipt };
}

describe('the runtime\'s alarms', () => {
  it('a blocked line and a dead letter: raised once, in alarms(), status(), the metrics and the error log; the block clears when the line flows', async () => {
    const c = await leader();
    await c.runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p/1' });
    await c.runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/p/2' });
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }] });
    await c.live(2000, [BLOCKED]);
    await c.receipt({ type: 'dead-letter', anomaly: false, entry: { deviceId: 'fw1', seq: 2, epoch: 1, reason: BLOCKED.reason, status: 422, response: 'no', payload: '{}' } });
    await c.live(2000, [BLOCKED]);
    expect(c.seen).toEqual(['raised device-blocked:fw1', 'raised dead-letter:fw1']);
    expect(c.runtime.alarms().map((a) => [a.id, a.subject])).toEqual([['device-blocked:fw1', 'fw1'], ['dead-letter:fw1', 'fw1']]);
    expect((await c.runtime.status()).alarms).toEqual(c.runtime.alarms());
    expect(await c.runtime.metrics()).toContain('baton_alarms_open{kind="device-blocked"} 1');
    const errors = c.logs.records().filter((r) => r.level === 50 && String(r.msg).startsWith('alarm raised'));
    expect(errors.map((r) => r.alarm)).toEqual(['device-blocked:fw1', 'dead-letter:fw1']);
    await c.live(1000);
    expect(c.seen).toEqual(['raised device-blocked:fw1', 'raised dead-letter:fw1', 'cleared device-blocked:fw1']);
    await c.runtime.stop();
    expect(c.seen.at(-1)).toBe('cleared dead-letter:fw1');
    expect(c.runtime.alarms()).toEqual([]);
  });

  it('a device whose oldest message waits past alarmLagMs, and the death of the only agent', async () => {
    const c = await leader();
    await c.runtime.dispatch({ deviceId: 'fw2', method: 'PUT', path: '/p/1' });
    await c.live(9000);
    expect(c.seen).toEqual([]);
    await c.live(3000);
    expect(c.seen).toEqual(['raised device-lagging:fw2']);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw2', from: 1, to: 1 }] });
    await c.live(2000);
    expect(c.seen).toEqual(['raised device-lagging:fw2', 'cleared device-lagging:fw2']);
    // no more heartbeats: the agent goes suspect, then dead
    await c.world.run(() => c.seen.length > 2, c.world.now + 10_000);
    expect(c.seen.at(-1)).toBe('raised no-healthy-agent');
    expect(c.runtime.alarms()[0]!.text).toContain('no agent is healthy');
    await c.live(1000);
    expect(c.seen.at(-1)).toBe('cleared no-healthy-agent');
    await c.runtime.stop();
  });
});
