// An agent's hold on its queue: what it gives back when it releases it, and when it consumes again.
// One agent over the in-memory broker and a simulated clock; the test plays the runtime (it
// publishes messages and answers heartbeats with lease grants while `granting` is on).
import { describe, expect, it } from 'vitest';
import { startAgent, type AgentHandle } from '../../src/agent/worker.ts';
import type { DeviceClient, DeviceOutcome, WireMessage } from '../../src/ports.ts';
import { parseHeartbeat } from '../../src/side-channel.ts';
import { agentKey, unseal } from '../../src/trust.ts';
import { TEST_SECRET, agentTrust, signedGrant, signedMessage } from '../support/trust.ts';
import { oneAgentGround } from '../support/agent-world.ts';

const msg = (seq: number): WireMessage => signedMessage({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: null });
const applied: DeviceOutcome = { kind: 'applied', status: 200 };
const busy: DeviceOutcome = { kind: 'transient', status: 503, reason: 'device answered 503' };

async function agentWorld(answer: (m: WireMessage) => { afterMs: number; outcome: DeviceOutcome } = () => ({ afterMs: 2, outcome: applied })) {
  const { world, rabbit, gate, conn, runtime, queue } = await oneAgentGround();
  const sent: number[] = [];
  // the device's answer reaches the agent through its gate (held while it is stopped)
  const client: DeviceClient = {
    send: (_d, m) =>
      new Promise((resolve) => {
        sent.push(m.seq);
        const a = answer(m);
        world.at(world.now + a.afterMs, () => gate.run(() => resolve(a.outcome)));
      }),
    watermark: async () => null,
    close: async () => {},
  };
  const w = { world, rabbit, gate, conn, runtime, queue, sent, granting: true, epoch: 1, agent: null as unknown as AgentHandle };
  await runtime.subscribeEvents('heartbeats', (p) => {
    const sealed = unseal((id) => agentKey(TEST_SECRET, id), 'heartbeats', p);
    const h = 'invalid' in sealed ? sealed : parseHeartbeat(sealed.event);
    if ('invalid' in h || !w.granting) return;
    const g = signedGrant(h.agentId, { incarnation: h.incarnation, epoch: w.epoch, beat: h.beat, durationMs: 1500, watermarks: {} });
    void runtime.publishEvent('control', g, { key: h.agentId });
  });
  w.agent = await startAgent(
    { id: 'a1', devices: [{ id: 'd1', url: 'http://d1.sim' }], namespace: 't', ...agentTrust('a1'), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 500 },
    { broker: conn, deviceClient: client, clock: world.clock(gate), incarnation: 'a1#1' },
  );
  const info = () => runtime.queueInfo(queue);
  // runs the world to time t (a no-op timer at t, so the clock gets there even when nothing else is due)
  const until = (t: number) => (world.at(t, () => {}), world.run(() => false, t));
  return { ...w, w, info, until };
}

describe('an agent that gives its queue back (hole 4)', () => {
  it('keeps its consumer while a request is on the wire, does not retry it, then gives back every delivery with its consumer', async () => {
    const t = await agentWorld((m) => (m.seq === 1 ? { afterMs: 4000, outcome: busy } : { afterMs: 2, outcome: applied }));
    for (let s = 1; s <= 5; s++) await t.runtime.publish(t.queue, msg(s));
    const releasing: string[] = [];
    t.agent.events.on('releasing', (e: { why: string }) => releasing.push(e.why));
    await t.until(300);
    t.w.granting = false; // the runtime stops renewing: the lease (valid until 1750) lapses
    await t.until(3500); // the agent decided to give the queue back (lapsed > releaseAfterMs) while seq 1 is out
    expect(releasing).toEqual([expect.stringMatching(/lease lapsed/)]);
    expect(await t.info()).toEqual({ messages: 0, consumers: 1 });
    await t.until(6000); // seq 1 answered 503: not retried after the release, given back with the rest
    expect(t.sent).toEqual([1]);
    expect(await t.info()).toEqual({ messages: 5, consumers: 0 });
  });

  it('acks the request on the wire when the device applied it, and gives back the rest', async () => {
    const t = await agentWorld((m) => (m.seq === 1 ? { afterMs: 4000, outcome: applied } : { afterMs: 2, outcome: applied }));
    for (let s = 1; s <= 5; s++) await t.runtime.publish(t.queue, msg(s));
    await t.until(300);
    t.w.granting = false;
    await t.until(3500);
    expect(await t.info()).toEqual({ messages: 0, consumers: 1 });
    await t.until(6000);
    expect(t.sent).toEqual([1]);
    expect(await t.info()).toEqual({ messages: 4, consumers: 0 });
  });

  it('gives back the deliveries that reach it while it is releasing (they were sent to it while it was stopped)', async () => {
    const t = await agentWorld();
    await t.until(300);
    t.w.granting = false;
    t.gate.pause(); // SIGSTOP: what the broker delivers now waits in the process
    await t.until(600);
    for (let s = 1; s <= 5; s++) await t.runtime.publish(t.queue, msg(s));
    await t.until(4000);
    t.gate.resume(); // its overdue heartbeat runs first: the lease lapsed long ago, it releases
    await t.until(5000);
    expect(t.sent).toEqual([]);
    expect(await t.info()).toEqual({ messages: 5, consumers: 0 });
  });
});

describe('an agent whose broker connection drops (hole 8)', () => {
  it('does not consume its queue again on its own: only once a lease is granted again', async () => {
    const t = await agentWorld();
    await t.until(500);
    expect((await t.info())?.consumers).toBe(1);
    t.w.granting = false; // a switch away from it runs: nobody grants it a lease
    t.conn.reconnect(); // its lease (valid until 2000) has not lapsed: only the lost consumer tells it
    await t.until(1200);
    expect(await t.info()).toEqual({ messages: 0, consumers: 0 });
    await t.runtime.publish(t.queue, msg(1));
    await t.until(1400);
    expect(t.sent).toEqual([]);
    expect(await t.info()).toEqual({ messages: 1, consumers: 0 });
    // chosen again under a new epoch: the next grant brings its consumer back
    t.w.epoch = 2;
    t.w.granting = true;
    await t.until(1800);
    expect(await t.info()).toEqual({ messages: 0, consumers: 1 });
    expect(t.sent).toEqual([1]);
  });
});
