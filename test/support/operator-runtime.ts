// A leading runtime over the in-memory adapters and the simulated clock, with one active agent the
// test speaks for (its heartbeats and receipts, signed as a real agent signs them) and the messages
// the runtime published to that agent's queue: what the operator actions' tests act on.
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { WireMessage } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { decodeMessage } from '../../src/wire.ts';
import { runtimeTrust, signedHeartbeat, signedMessage, signedReceipt } from './trust.ts';

export async function operatorRuntime(o: { devices?: string[]; seed?: number } = {}) {
  const devices = o.devices ?? ['fw1', 'fw2'];
  const world = new World(o.seed ?? 7);
  const rabbit = new MemoryRabbit('op');
  const store = createMemoryStore({ now: () => world.now });
  const gate = new Gate('r1');
  const runtime = createRuntime({ devices, runtimeId: 'r1', namespace: 'op', ...runtimeTrust, leaderTtl: 1500, ports: { broker: rabbit.connect({ schedule: gate.run }), store }, clock: world.clock(gate) });
  const agent = rabbit.connect({ schedule: (f) => f() });
  await agent.start();
  /** what the runtime published to the agent's queue, in order */
  const sent: WireMessage[] = [];
  await agent.consume(await agent.assertAgentQueue('a1'), (d) => {
    const m = decodeMessage(d.raw);
    if ('message' in m) sent.push(m.message);
    d.ack();
  }, { prefetch: 100 });
  let beat = 0;
  await runtime.start();
  await agent.publishEvent('heartbeats', signedHeartbeat('a1', ++beat));
  await world.run(() => false, world.now + 250);

  /** Drives the simulated world until `p` settles (or `ms` of simulated time pass): its value, or its error. */
  async function settle<T>(p: Promise<T>, ms = 5000): Promise<{ value?: T; error?: Error & { code?: string } }> {
    let out: { value?: T; error?: Error & { code?: string } } | null = null;
    p.then((value) => (out = { value }), (error: Error) => (out = { error }));
    await world.run(() => out !== null, world.now + ms);
    if (!out) throw new Error(`still pending after ${ms} simulated ms`);
    return out;
  }
  let receipts = 0;
  runtime.on('receipts.applied', () => receipts++);
  runtime.on('message.dead-lettered', () => receipts++);
  /** a receipt of agent a1 (epoch 1), once the runtime took it */
  async function receipt(r: object): Promise<void> {
    const before = receipts;
    await agent.publishEvent('receipts', signedReceipt('a1', { epoch: 1, ...r }));
    await world.run(() => receipts > before, world.now + 500);
  }
  const applied = (deviceId: string, from: number, to = from) => receipt({ type: 'applied', ranges: [{ deviceId, from, to }] });
  /** the device refused `m` (a 422): a dead letter carrying the signed message, as an agent records it */
  const refused = (m: WireMessage, payload = JSON.stringify(signedMessage(m))) =>
    receipt({ type: 'dead-letter', anomaly: false, entry: { deviceId: m.deviceId, seq: m.seq, epoch: 1, reason: 'device rejected the message (422)', status: 422, response: 'vlan 4095 is reserved', payload } });
  async function dispatch(deviceId: string, path: string, body: unknown = null) {
    const r = await settle(runtime.dispatch({ deviceId, method: 'PUT', path, body, key: 'k' }));
    if (r.error) throw r.error;
    await world.run(() => sent.some((m) => m.deviceId === deviceId && m.seq === r.value!.seq), world.now + 1000);
    return r.value!;
  }
  return { world, rabbit, store, runtime, agent, sent, settle, receipt, applied, refused, dispatch };
}
