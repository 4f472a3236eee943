// An agent asked for its lease back (a planned handover): it finishes the request on the wire, gives
// its queue back, and only then answers `released`; a request for another process or an older epoch
// is ignored; a grant of the epoch it gave back is never taken again. One agent over the in-memory
// broker and a simulated clock; the test plays the runtime (grants, release requests, receipts).
import { describe, expect, it } from 'vitest';
import { startAgent, type AgentHandle } from '../../src/agent/worker.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import type { DeviceClient, DeviceOutcome, WireMessage } from '../../src/ports.ts';
import { parseHeartbeat, parseReceipt, type ReceiptEvent } from '../../src/side-channel.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentKey, seal, unseal } from '../../src/trust.ts';
import { TEST_SECRET, agentTrust, signedGrant, signedMessage } from '../support/trust.ts';

const msg = (seq: number): WireMessage => signedMessage({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: null });
const applied: DeviceOutcome = { kind: 'applied', status: 200 };
const release = (r: { incarnation?: string; epoch?: number }) =>
  seal(agentKey(TEST_SECRET, 'a1'), 'control', 'a1', { type: 'release', agentId: 'a1', incarnation: 'a1#1', epoch: 1, ...r });

async function agentWorld(answerAfterMs: (seq: number) => number) {
  const world = new World(1);
  const rabbit = new MemoryRabbit('t');
  const gate = new Gate('a1');
  const runtime = rabbit.connect();
  await runtime.start();
  const queue = await runtime.assertAgentQueue('a1');
  // what reached the device, and when each request was answered
  const log: string[] = [];
  const client: DeviceClient = {
    send: (_d, m) =>
      new Promise((resolve) => {
        log.push(`sent ${m.seq}`);
        world.at(world.now + answerAfterMs(m.seq), () => gate.run(() => (log.push(`answered ${m.seq}`), resolve(applied))));
      }),
    watermark: async () => 0,
    close: async () => {},
  };
  const w = { granting: true, epoch: 1, grants: 0 };
  await runtime.subscribeEvents('heartbeats', (p) => {
    const sealed = unseal((id) => agentKey(TEST_SECRET, id), 'heartbeats', p);
    const h = 'invalid' in sealed ? sealed : parseHeartbeat(sealed.event);
    if ('invalid' in h || !w.granting) return;
    w.grants++;
    void runtime.publishEvent('control', signedGrant(h.agentId, { incarnation: h.incarnation, epoch: w.epoch, beat: h.beat, durationMs: 1500, watermarks: {} }), { key: h.agentId });
  });
  const receipts: ReceiptEvent[] = [];
  await runtime.subscribeEvents('receipts', (p) => {
    const sealed = unseal((id) => agentKey(TEST_SECRET, id), 'receipts', p);
    const r = 'invalid' in sealed ? sealed : parseReceipt(sealed.event);
    if (!('invalid' in r)) receipts.push(r);
  });
  const agent: AgentHandle = await startAgent(
    { id: 'a1', devices: [{ id: 'd1', url: 'http://d1.sim' }], namespace: 't', ...agentTrust('a1'), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
    { broker: rabbit.connect({ schedule: gate.run }), deviceClient: client, clock: world.clock(gate), incarnation: 'a1#1' },
  );
  const until = (t: number) => (world.at(t, () => {}), world.run(() => false, t));
  const said = () => receipts.map((r) => (r.type === 'applied' ? `applied ${r.ranges.map((g) => `${g.from}-${g.to}`).join(',')}` : r.type === 'released' ? `released ${r.epoch}` : r.type));
  return { world, runtime, queue, log, w, agent, receipts, said, until, info: () => runtime.queueInfo(queue) };
}

describe('an agent asked for its lease back (planned handover)', () => {
  it('finishes the request on the wire, gives the rest back unsent, and answers released after that request\'s receipt', async () => {
    const t = await agentWorld((seq) => (seq === 2 ? 1000 : 2));
    for (let s = 1; s <= 5; s++) await t.runtime.publish(t.queue, msg(s));
    await t.until(300); // granted at the first heartbeat: seq 1 applied, seq 2 on the wire for a second
    expect(t.log).toEqual(['sent 1', 'answered 1', 'sent 2']);
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.until(1000);
    // seq 2 is still out: no answer yet, nothing new sent, the consumer kept (its deliveries go with it)
    expect(t.said()).not.toContain('released 1');
    expect(t.log).toEqual(['sent 1', 'answered 1', 'sent 2']);
    expect(await t.info()).toEqual({ messages: 0, consumers: 1 });
    await t.until(1500);
    expect(t.log).toEqual(['sent 1', 'answered 1', 'sent 2', 'answered 2']);
    expect(t.said()).toEqual(['applied 1-1', 'applied 2-2', 'released 1']);
    expect(t.receipts.at(-1)).toEqual({ type: 'released', agentId: 'a1', epoch: 1, incarnation: 'a1#1' });
    expect(await t.info()).toEqual({ messages: 3, consumers: 0 });
  });

  it('asked while it is stopping: answers only once the request on the wire finished', async () => {
    const t = await agentWorld((seq) => (seq === 2 ? 1000 : 2));
    for (let s = 1; s <= 3; s++) await t.runtime.publish(t.queue, msg(s));
    await t.until(300);
    expect(t.log).toEqual(['sent 1', 'answered 1', 'sent 2']);
    void t.agent.stop();
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.until(1000);
    expect(t.said()).not.toContain('released 1');
    await t.until(1500);
    expect(t.log).toEqual(['sent 1', 'answered 1', 'sent 2', 'answered 2']);
    // answered after seq 2's receipt, or not at all (the connection closed first): never before
    expect(t.said().indexOf('applied 2-2')).toBeGreaterThanOrEqual(0);
    expect(t.said().slice(0, t.said().indexOf('applied 2-2'))).not.toContain('released 1');
  });

  it('never takes a grant of the epoch it gave back again, not even one sent before the request; a newer epoch brings it back', async () => {
    const t = await agentWorld(() => 2);
    await t.until(300);
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.until(600);
    expect(t.said()).toEqual(['released 1']);
    const grantsBefore = t.w.grants;
    await t.until(1500); // the runtime still answers heartbeats with grants of epoch 1
    expect(t.w.grants).toBeGreaterThan(grantsBefore);
    await t.runtime.publish(t.queue, msg(1));
    await t.until(2000);
    expect(await t.info()).toEqual({ messages: 1, consumers: 0 });
    expect(t.log).toEqual([]);
    t.w.epoch = 2; // chosen again, under a new epoch
    await t.until(2500);
    expect(t.log).toEqual(['sent 1', 'answered 1']);
  });

  it('ignores a request for another process of the agent, or for an epoch below the lease it holds', async () => {
    const t = await agentWorld(() => 2);
    t.w.epoch = 3;
    await t.until(300);
    await t.runtime.publishEvent('control', release({ incarnation: 'a1#0' }), { key: 'a1' });
    await t.runtime.publishEvent('control', release({ epoch: 2 }), { key: 'a1' });
    await t.runtime.publish(t.queue, msg(1));
    await t.until(1000);
    expect(t.said()).toEqual(['applied 1-1']);
    expect(t.log).toEqual(['sent 1', 'answered 1']);
    expect(await t.info()).toEqual({ messages: 0, consumers: 1 });
  });

  it('answers a repeated request again (its answer may be lost), giving back only once', async () => {
    const t = await agentWorld(() => 2);
    const releasing: string[] = [];
    t.agent.events.on('releasing', (e: { why: string }) => releasing.push(e.why));
    await t.until(300);
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.until(600);
    await t.runtime.publishEvent('control', release({}), { key: 'a1' });
    await t.until(900);
    expect(t.said()).toEqual(['released 1', 'released 1', 'released 1']);
    expect(releasing).toEqual(['planned handover: the runtime asked for the lease of epoch 1 back']);
  });
});
