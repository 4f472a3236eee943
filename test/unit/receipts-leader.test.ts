// Receipts reach the leading runtime, all of them: a standby never consumes the receipts queue, and a
// runtime that takes over reads what arrived meanwhile, with the watermarks its predecessor stored.
import { describe, expect, it } from 'vitest';
import { MemoryRabbit, type MemoryConnection } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { type Runtime } from '../../src/api.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { runtimeTrust, signedHeartbeat, signedReceipt } from '../support/trust.ts';

const devices = ['fw1'];

function cluster() {
  const world = new World(1);
  const rabbit = new MemoryRabbit('rc');
  const store = createMemoryStore({ now: () => world.now });
  const runtimes: Array<{ gate: Gate; conn: MemoryConnection; runtime: Runtime; receipts: number }> = [];
  const start = async (id: string) => {
    const gate = new Gate(id);
    const conn = rabbit.connect({ schedule: gate.run });
    const runtime = createRuntime({ devices, runtimeId: id, namespace: 'rc', ...runtimeTrust, leaderTtl: 1500, ports: { broker: conn, store }, clock: world.clock(gate) });
    const entry = { gate, conn, runtime, receipts: 0 };
    runtime.on('receipts.applied', () => entry.receipts++);
    runtime.on('message.dead-lettered', () => entry.receipts++);
    await runtime.start();
    runtimes.push(entry);
    return entry;
  };
  // an agent as the runtimes see it: heartbeats and receipts on the broker
  const agent = rabbit.connect({ schedule: (f) => f() });
  let beat = 0;
  const heartbeat = () => agent.publishEvent('heartbeats', signedHeartbeat('a1', ++beat));
  // receipts of the agent that holds epoch 1 (the first agent recorded)
  const applied = (seq: number) => agent.publishEvent('receipts', signedReceipt('a1', { type: 'applied', epoch: 1, ranges: [{ deviceId: 'fw1', from: seq, to: seq }] }));
  const deadLetter = (seq: number) =>
    agent.publishEvent('receipts', signedReceipt('a1', { type: 'dead-letter', epoch: 1, entry: { deviceId: 'fw1', seq, epoch: 1, agentId: 'a1', reason: '404 not found', status: 404, response: '', payload: '{}' } }));
  return { world, store, start, heartbeat, applied, deadLetter, ready: () => agent.start() };
}

describe('receipts and leadership', () => {
  it('only the leader reads receipts: every applied mark and dead letter reaches it, none the standby', async () => {
    const c = cluster();
    await c.ready();
    const r1 = await c.start('r1');
    await c.world.run(() => false, c.world.now + 100);
    const r2 = await c.start('r2');
    await c.heartbeat();
    await c.world.run(() => false, c.world.now + 100);
    expect((await r1.runtime.status()).leading).toBe(true);
    expect((await r2.runtime.status()).leading).toBe(false);
    // receipts count only for seqs handed out
    for (let i = 0; i < 11; i++) await r1.runtime.dispatch(workloadMessage('fw1', i));

    const refused = r1.runtime.applied({ deviceId: 'fw1', seq: 11 }, { timeoutMs: 10_000 }).then(() => 'applied', (e: Error & { code?: string }) => e.code);
    for (let seq = 1; seq <= 10; seq++) await c.applied(seq);
    await c.deadLetter(11);
    await c.world.run(() => false, c.world.now + 100);

    expect(r2.receipts).toBe(0);
    expect(r1.receipts).toBe(11);
    await expect(r1.runtime.applied({ deviceId: 'fw1', seq: 10 }, { timeoutMs: 10 })).resolves.toBeUndefined();
    expect(await refused).toBe('device-rejected');
    expect((await c.store.listDeadLetters()).map((d) => d.seq)).toEqual([11]);
  });

  it('a runtime that takes over reads the receipts that arrived while nobody led, above the stored watermarks', async () => {
    const c = cluster();
    await c.ready();
    const r1 = await c.start('r1');
    await c.heartbeat();
    await c.world.run(() => false, c.world.now + 100);
    for (let i = 0; i < 8; i++) await r1.runtime.dispatch(workloadMessage('fw1', i));
    for (let seq = 1; seq <= 5; seq++) await c.applied(seq);
    await c.world.run(() => false, c.world.now + 500); // r1 reads and stores them
    expect(r1.receipts).toBe(5);
    expect((await c.store.deviceStreams()).find((d) => d.deviceId === 'fw1')?.watermark).toBe(5);

    r1.gate.kill(); // the leader's process is gone, and its connection with it
    r1.conn.kill();
    for (let seq = 6; seq <= 8; seq++) await c.applied(seq);
    const r2 = await c.start('r2');
    await c.heartbeat();
    await c.world.run(() => (r2.receipts >= 3), c.world.now + 5000);
    expect(r2.receipts).toBe(3);
    await expect(r2.runtime.applied({ deviceId: 'fw1', seq: 8 }, { timeoutMs: 10 })).resolves.toBeUndefined();
  });
});
