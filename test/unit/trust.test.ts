// The trust boundary (issue 13, item 2): a broker client that is neither the runtime nor an agent
// (no secret, no agent key) publishes what the code's wire formats allow: heartbeats, receipts,
// lease grants, messages straight into an agent's queue. Each case runs the real runtime and agents
// over the in-memory broker and store on a simulated clock, and shows baton unchanged: nothing lost,
// no stale epoch, no switch, bounded memory.
import { describe, expect, it } from 'vitest';
import type { MemoryConnection } from '../../src/adapters/memory/broker.ts';
import type { WireMessage } from '../../src/ports.ts';
import type { Dispatched, Runtime } from '../../src/api.ts';
import { Gate } from '../../src/tools/sim/world.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { simCluster, type SimCluster } from '../support/sim-cluster.ts';
import { signedHeartbeat } from '../support/trust.ts';

/** An attacker's connection to the broker: it may publish anywhere and read the heartbeats fanout. */
async function intruder(c: SimCluster) {
  const conn: MemoryConnection = c.rabbit.connect({ schedule: (f) => f() });
  await conn.start();
  const heard: Array<Record<string, unknown>> = [];
  await conn.subscribeEvents('heartbeats', (p) => void heard.push(p as Record<string, unknown>));
  const clock = c.world.clock(new Gate('intruder'));
  /** calls `fn` every `ms` of simulated time until the test ends */
  const every = (ms: number, fn: () => void) => {
    const tick = () => (fn(), clock.setTimeout(tick, ms));
    tick();
  };
  return { conn, heard, every };
}

/** what a heartbeat of the current wire format looks like, in any agent's name */
const fakeHeartbeat = (agentId: string, n: number, topic = `t.agent.${agentId}`) => ({
  type: 'heartbeat', agentId, topic, host: 'h', pid: 1, sentAt: 0, mono: n, beat: n, incarnation: `${agentId}#forged`,
});

/** the decoded content of a captured heartbeat, whatever envelope it travels in */
const contentOf = (p: Record<string, unknown>): Record<string, unknown> => (typeof p.body === 'string' ? JSON.parse(p.body) : p);

/** a captured heartbeat with one field changed: in its envelope when it has one (its MAC then stale) */
const tampered = (p: Record<string, unknown>, change: Record<string, unknown>) =>
  typeof p.body === 'string' ? { ...p, body: JSON.stringify({ ...JSON.parse(p.body), ...change }) } : { ...p, ...change };

async function activeCluster(seed: number, agents = ['a1']) {
  const c = simCluster({ seed, devices: 1 });
  const model = c.models.get('fw1')!;
  const r1 = await c.runtime('r1');
  let active: string | null = null;
  let switches = 0;
  r1.on('coordinator.active', (e) => (active = e.assignment.agentId));
  r1.on('switch.started', () => switches++);
  for (const a of agents) await c.agent(a);
  expect(await c.world.run(() => active !== null, 5000)).toBe(true);
  return { c, model, r1, active: () => active, switches: () => switches };
}

/** dispatches `n` workload messages (from index `from`) and runs the world until the device applied them, or `ms` passed */
async function deliver(c: SimCluster, r: Runtime, from: number, n: number, ms = 10_000): Promise<Dispatched[]> {
  const model = c.models.get('fw1')!;
  const pending = Array.from({ length: n }, (_, i) => r.dispatch(workloadMessage('fw1', from + i)));
  let out: Dispatched[] | null = null;
  void Promise.all(pending).then((d) => (out = d));
  await c.world.run(() => out !== null, c.world.now + ms);
  expect(out).not.toBeNull();
  const sent = out!;
  await c.world.run(() => sent.every((d) => model.applied.some((a) => a.seq === d.seq)), c.world.now + ms);
  return sent;
}

describe('trust boundary: a broker client without the secret cannot steer baton', () => {
  it('a heartbeat naming the receipts queue as its topic registers nobody: messages go to a real agent, none is lost', async () => {
    const c = simCluster({ seed: 11, devices: 1 });
    const model = c.models.get('fw1')!;
    const r1 = await c.runtime('r1');
    const x = await intruder(c);
    let n = 0;
    x.every(250, () => void x.conn.publishEvent('heartbeats', fakeHeartbeat('evil', ++n, 't.receipts')));
    await c.world.run(() => false, c.world.now + 1000);
    await c.agent('a1');
    const sent = await deliver(c, r1, 0, 20);

    expect(model.applied.map((a) => a.seq)).toEqual(sent.map((d) => d.seq));
    expect((await r1.status()).agents.map((a) => a.agentId)).toEqual(['a1']);
    expect((await r1.status()).assignment?.topic).toBe('t.agent.a1');
    c.killAll();
  });

  it('a forged receipt claiming seq 10^12 applied raises no watermark: every later message is delivered', async () => {
    const { c, model, r1 } = await activeCluster(12);
    const x = await intruder(c);
    const first = await deliver(c, r1, 0, 5);
    await x.conn.publishEvent('receipts', { type: 'applied', agentId: 'a1', epoch: 1, ranges: [{ deviceId: 'fw1', from: 1e12, to: 1e12 }] });
    await x.conn.publishEvent('receipts', { type: 'applied', agentId: 'a1', marks: [{ deviceId: 'fw1', seq: 1e12 }] });
    await c.world.run(() => false, c.world.now + 1000);
    const later = await deliver(c, r1, 5, 5);

    expect(model.applied.map((a) => a.seq)).toEqual([...first, ...later].map((d) => d.seq));
    const wm = (await r1.status()).devices.find((d) => d.deviceId === 'fw1')!.watermark;
    expect(wm).toBeLessThanOrEqual(later.at(-1)!.seq);
    const never = r1.applied({ deviceId: 'fw1', seq: 1e12 }, { timeoutMs: 50 }).then(() => 'applied', (e: { code?: string }) => e.code);
    await c.world.run(() => false, c.world.now + 100);
    expect(await never).toBe('timeout');
    c.killAll();
  });

  it('a forged lease grant at epoch 10^12 is refused: the agent writes under its real epoch and failover goes on', async () => {
    const { c, model, r1 } = await activeCluster(13, ['a1', 'a2']);
    const x = await intruder(c);
    await c.world.run(() => x.heard.some((p) => contentOf(p).agentId === 'a1'), c.world.now + 1000);
    const h = contentOf(x.heard.filter((p) => contentOf(p).agentId === 'a1').at(-1)!);
    const grant = { type: 'lease', agentId: 'a1', incarnation: h.incarnation, epoch: 1e12, echo: h.mono, beat: h.beat, durationMs: 1e9, watermarks: {} };
    await x.conn.publishEvent('control', grant, { key: 'a1' });
    const first = await deliver(c, r1, 0, 5);
    expect(model.maxEpoch).toBeLessThan(1000);

    const active = (await r1.status()).assignment!.agentId;
    c.kill(active);
    const later = await deliver(c, r1, 5, 5, 30_000);
    expect(model.applied.map((a) => a.seq)).toEqual([...first, ...later].map((d) => d.seq));
    expect(model.maxEpoch).toBeLessThan(1000);
    expect(model.fencedWrites).toBe(0);
    c.killAll();
  });

  it("the agent's own heartbeat replayed, or replayed with a huge monotonic time, changes nothing: no switch, its real heartbeats still count", async () => {
    const { c, r1, switches, active } = await activeCluster(14, ['a1', 'a2']);
    const x = await intruder(c);
    const who = active()!;
    await c.world.run(() => x.heard.some((p) => contentOf(p).agentId === who), c.world.now + 1000);
    const captured = x.heard.filter((p) => contentOf(p).agentId === who).at(-1)!;
    await x.conn.publishEvent('heartbeats', tampered(captured, { mono: 1e15, beat: 1e15 }));
    // and the same heartbeat again and again, as it was
    x.every(100, () => void x.conn.publishEvent('heartbeats', captured));
    const sent = await deliver(c, r1, 0, 10);
    await c.world.run(() => false, c.world.now + 10_000);

    expect(switches()).toBe(0);
    expect(active()).toBe(who);
    expect(c.models.get('fw1')!.applied.map((a) => a.seq)).toEqual(sent.map((d) => d.seq));
    c.killAll();
  });

  it('fake agents that heartbeat and never consume cause no switch; 20,000 fake ids leave status() small', async () => {
    const c = simCluster({ seed: 15, devices: 1 });
    const model = c.models.get('fw1')!;
    const r1 = await c.runtime('r1');
    let switches = 0;
    r1.on('switch.started', () => switches++);
    const x = await intruder(c);
    let n = 0;
    x.every(250, () => {
      n++;
      void x.conn.publishEvent('heartbeats', fakeHeartbeat('fake1', n));
      void x.conn.publishEvent('heartbeats', fakeHeartbeat('fake2', n));
    });
    for (let i = 0; i < 20_000; i++) void x.conn.publishEvent('heartbeats', fakeHeartbeat(`f${i}`, 1));
    await c.world.run(() => false, c.world.now + 1000);
    await c.agent('a1');
    const sent = await deliver(c, r1, 0, 20);
    await c.world.run(() => false, c.world.now + 10_000);

    expect(switches).toBe(0);
    expect(model.applied.map((a) => a.seq)).toEqual(sent.map((d) => d.seq));
    const status = await r1.status();
    expect(status.agents.map((a) => a.agentId)).toEqual(['a1']);
    expect(JSON.stringify(status).length).toBeLessThan(100_000);
    c.killAll();
  });

  it.each([
    ['the next seq', (last: number) => last + 1],
    ['2^53-1', () => Number.MAX_SAFE_INTEGER],
  ])('a message written straight into the agent\'s queue with %s is dead-lettered unread; the real ones all arrive', async (_name, seqOf) => {
    const { c, model, r1, active } = await activeCluster(16);
    const x = await intruder(c);
    const first = await deliver(c, r1, 0, 5);
    const forged: WireMessage = { deviceId: 'fw1', seq: seqOf(first.at(-1)!.seq), method: 'PUT', path: '/policies/evil', body: { owned: true } };
    await x.conn.publish(`t.agent.${active()}`, forged);
    await c.world.run(() => false, c.world.now + 500);
    const later = await deliver(c, r1, 5, 5);

    expect(model.applied.map((a) => a.seq)).toEqual([...first, ...later].map((d) => d.seq));
    expect(model.applied.some((a) => a.path === '/policies/evil')).toBe(false);
    const dead = await c.store.listDeadLetters();
    expect(dead).toHaveLength(1);
    expect(dead[0]!.reason).toMatch(/unauthenticated/);
    // an unauthenticated message settles no seq of the device: it is recorded under no device
    expect(dead[0]!.deviceId).toBe('?');
    c.killAll();
  });

  it('the registry stays bounded with agents of the deployment too: at most maxAgents, the dead forgotten', async () => {
    const c = simCluster({ seed: 17, devices: 1 });
    const r1 = await c.runtime('r1', { maxAgents: 3, forgetAgentAfter: 60_000 });
    const x = await intruder(c);
    const ids = async () => (await r1.status()).agents.map((a) => a.agentId);
    for (const id of ['b1', 'b2', 'b3', 'b4']) await x.conn.publishEvent('heartbeats', signedHeartbeat(id, 1));
    await c.world.run(() => false, c.world.now + 100);
    expect(await ids()).toEqual(['b1', 'b2', 'b3']); // full: b4 waits for room
    await c.world.run(() => false, c.world.now + 5000); // all three dead (no heartbeat, no consumer)
    await x.conn.publishEvent('heartbeats', signedHeartbeat('b4', 2));
    await c.world.run(() => false, c.world.now + 100);
    const now = await ids();
    expect(now).toHaveLength(3);
    expect(now).toContain('b4');
    // the one in use is never forgotten; the other dead ones are, after forgetAgentAfter
    await c.world.run(() => false, c.world.now + 70_000);
    const inUse = (await r1.status()).assignment!.agentId;
    expect(await ids()).toEqual([inUse]);
    c.killAll();
  });
});
