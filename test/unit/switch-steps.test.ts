// The switch's choose and move steps over the in-memory broker and store, on a simulated clock.
import { describe, expect, it } from 'vitest';
import { createActor } from 'xstate';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { AgentRegistry } from '../../src/runtime/agent-registry.ts';
import type { AgentView } from '../../src/api.ts';
import type { LeaseGranter } from '../../src/runtime/lease-granter.ts';
import { silentLogger } from '../../src/logger.ts';
import { MemoryRabbit, type MemoryConnection } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { Broker, LeaderTerm, Store, Subscription, WireMessage } from '../../src/ports.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { switchSteps } from '../../src/runtime/switch-steps.ts';

const msg = (seq: number): WireMessage => ({ deviceId: 'd1', seq, method: 'PUT', path: `/p/${seq}`, body: null });
const view = (agentId: string): AgentView => ({ agentId, topic: `t.agent.${agentId}`, host: 'h', state: 'idle', lastHeartbeat: 0 });

async function setup(healthy: string[], broker?: (conn: MemoryConnection) => Broker) {
  const world = new World(1);
  const gate = new Gate('runtime');
  const rabbit = new MemoryRabbit('t');
  const conn = rabbit.connect();
  await conn.start();
  const store = createMemoryStore({ now: () => world.now });
  const targets: Array<{ agentId: string; epoch: number } | null> = [];
  const steps = switchSteps({
    store: () => store,
    broker: broker ? broker(conn) : conn,
    registry: { healthy: () => healthy.map(view) } as unknown as AgentRegistry,
    granter: { setTarget: (t: { agentId: string; epoch: number } | null) => void targets.push(t), switchingFrom: () => {}, waitMs: () => 0 } as unknown as LeaseGranter,
    management: null,
    clock: world.clock(gate),
    logger: silentLogger(),
    namespace: 't',
    term: () => term,
  });
  // the runtime leads for the whole test (a simulated minute) unless a test says it lost
  let term: LeaderTerm | null = { holder: 'r1', epoch: (await store.acquireLeadership('r1', 600_000)).epoch };
  const lose = () => void (term = null);
  await conn.assertAgentQueue('a1');
  await store.recordFirstAgent({ agentId: 'a1', topic: 't.agent.a1', host: 'h' }, term!);
  const switching = (await store.beginSwitch({ expectEpoch: 1, switchId: 'sw-2', reason: 'test', term: term! }))!;
  /** runs a step's actor to its end on the simulated clock (bounded: a step that never ends fails) */
  const run = async <T>(logic: Parameters<typeof createActor>[0], input: unknown): Promise<T> => {
    let out: { value: T } | { error: unknown } | null = null;
    const actor = createActor(logic as never, { input } as never);
    actor.subscribe({ complete: () => (out = { value: (actor.getSnapshot() as { output: T }).output }), error: (error) => (out = { error }) });
    actor.start();
    world.at(60_000, () => {});
    await world.run(() => out !== null, 60_000);
    if (!out) throw new Error('the step did not end within 60 s (simulated)');
    if ('error' in out) throw (out as { error: unknown }).error;
    return (out as { value: T }).value;
  };
  return { world, rabbit, conn, store, steps, switching, targets, run, lose };
}

/** The connection as a plain Broker port, so a test can wrap one of its calls. */
const port = (c: MemoryConnection): Broker => ({
  start: () => c.start(),
  assertAgentQueue: (a) => c.assertAgentQueue(a),
  publish: (q, m) => c.publish(q, m),
  settle: () => c.settle(),
  queueInfo: (q) => c.queueInfo(q),
  consume: (q, f, o) => c.consume(q, f, o),
  publishEvent: (ch, p, o) => c.publishEvent(ch, p, o),
  subscribeEvents: (ch, h, k) => c.subscribeEvents(ch, h, k),
  move: (f, t, o) => c.move(f, t, o),
  close: () => c.close(),
});

const seqsIn = (rabbit: MemoryRabbit, queue: string) => rabbit.queue(queue).ready.map((m) => (JSON.parse(m.body.toString('utf8')) as WireMessage).seq);

describe('switch steps', () => {
  it('chooses another healthy agent over the old one', async () => {
    const t = await setup(['a1', 'a2']);
    const chosen = await t.run<Assignment>(t.steps.chooseCandidate, { assignment: t.switching });
    expect(chosen).toMatchObject({ agentId: 'a2', previousAgent: 'a1', epoch: 2 });
  });

  it('hole 6: chooses the old agent again when it is the only healthy one, and its queue stays put (no wait for its consumer to go)', async () => {
    const t = await setup(['a1']);
    const chosen = await t.run<Assignment>(t.steps.chooseCandidate, { assignment: t.switching });
    expect(chosen).toMatchObject({ agentId: 'a1', previousAgent: 'a1', epoch: 2 });
    // it consumes its queue again (a lease under epoch 2 reached it)
    const agent = t.rabbit.connect();
    await agent.start();
    await agent.consume('t.agent.a1', () => {}, { prefetch: 10 });
    await t.conn.publish('t.agent.a1', msg(1));
    const after = await t.run<Assignment>(t.steps.moveQueue, { assignment: chosen });
    expect(after).toMatchObject({ agentId: 'a1', phase: 'draining', epoch: 2 });
    expect(t.targets).toEqual([{ agentId: 'a1', epoch: 2 }]);
    expect((await t.store.listSwitches())[0]).toMatchObject({ fromAgent: 'a1', toAgent: 'a1', moved: 0 });
  });

  it('hole 4: a consumer that comes back to the old queue during the move and holds deliveries: the move waits for it to go and moves again', async () => {
    let oldAgent!: MemoryConnection;
    let moves = 0;
    let back: Promise<Subscription> | null = null;
    // during the first move the old agent's connection drops (its 3 deliveries return) and it
    // attaches again at once (an adapter that re-attaches), taking them again
    const t = await setup(['a1', 'a2'], (conn) => ({
      ...port(conn),
      move: async (from: string, to: string) => {
        const n = await conn.move(from, to);
        if (++moves === 1) {
          oldAgent.kill();
          const again = t.rabbit.connect();
          await again.start();
          back = again.consume(from, () => {}, { prefetch: 10 });
        }
        return n;
      },
    }));
    for (let s = 1; s <= 5; s++) await t.conn.publish('t.agent.a1', msg(s));
    oldAgent = t.rabbit.connect();
    await oldAgent.start();
    const sub = await oldAgent.consume('t.agent.a1', () => {}, { prefetch: 3 });
    await new Promise((r) => setTimeout(r, 0));
    await sub.cancel(); // gone from the queue, its 3 deliveries still unacked
    expect(await t.conn.queueInfo('t.agent.a1')).toEqual({ messages: 2, consumers: 0 });
    const chosen = await t.run<Assignment>(t.steps.chooseCandidate, { assignment: t.switching });
    // it gives them back 2 s later
    t.world.at(t.world.now + 2000, () => void back!.then((s) => s.release()));
    await t.run<Assignment>(t.steps.moveQueue, { assignment: chosen });
    expect(t.world.now).toBeGreaterThanOrEqual(2000);
    expect(moves).toBe(2);
    expect(await t.conn.queueInfo('t.agent.a1')).toEqual({ messages: 0, consumers: 0 });
    expect(seqsIn(t.rabbit, 't.agent.a2').sort()).toEqual([1, 2, 3, 4, 5]);
    expect((await t.store.listSwitches())[0]).toMatchObject({ fromAgent: 'a1', toAgent: 'a2', moved: 5 });
  });

  it('a runtime that stops leading mid-move stops moving before the next message: the rest stays in the old queue, in order, for the leader', async () => {
    let asked = 0;
    const t = await setup(['a1', 'a2'], (conn) => ({
      ...port(conn),
      // the lease lapses (a pause) as the third message is about to go
      move: (from, to, o) => conn.move(from, to, { wanted: () => (++asked === 3 && t.lose(), o?.wanted?.() ?? null) }),
    }));
    for (let s = 1; s <= 5; s++) await t.conn.publish('t.agent.a1', msg(s));
    const chosen = await t.run<Assignment>(t.steps.chooseCandidate, { assignment: t.switching });
    await expect(t.run<Assignment>(t.steps.moveQueue, { assignment: chosen })).rejects.toMatchObject({ code: 'not-leader' });
    expect(seqsIn(t.rabbit, 't.agent.a2')).toEqual([1, 2]);
    expect(seqsIn(t.rabbit, 't.agent.a1')).toEqual([3, 4, 5]);
  });

  it('a beginSwitch answered after its leader term ended (a slow connection) changes nothing here: the granter is not told to stop granting', async () => {
    const world = new World(1);
    const rabbit = new MemoryRabbit('t');
    const conn = rabbit.connect();
    await conn.start();
    const store = createMemoryStore({ now: () => world.now });
    let term: LeaderTerm | null = { holder: 'r1', epoch: (await store.acquireLeadership('r1', 600_000)).epoch };
    const first = await store.recordFirstAgent({ agentId: 'a1', topic: 't.agent.a1', host: 'h' }, term);
    // the statement runs while the term holds; its answer is slow to come back
    const answers: Array<() => void> = [];
    const slow = { ...store, beginSwitch: (a: Parameters<Store['beginSwitch']>[0]) => store.beginSwitch(a).then((v) => new Promise<typeof v>((resolve) => answers.push(() => resolve(v)))) } as Store;
    const switchingFrom: string[] = [];
    const steps = switchSteps({
      store: () => slow, broker: conn, registry: { healthy: () => [view('a1'), view('a2')] } as unknown as AgentRegistry,
      granter: { switchingFrom: (a: string) => void switchingFrom.push(a), setTarget: () => {}, waitMs: () => 0 } as unknown as LeaseGranter,
      management: null, clock: world.clock(new Gate('r1')), logger: silentLogger(), namespace: 't', term: () => term,
    });
    let out: { error?: unknown; done?: boolean } = {};
    const actor = createActor(steps.beginSwitch, { input: { assignment: first, reason: 'test', planned: false } });
    actor.subscribe({ complete: () => (out = { done: true }), error: (error) => (out = { error }) });
    actor.start();
    await world.run(() => answers.length > 0, 1000);
    // meanwhile the lease ran out here and the runtime took a new term (its coordinator started over)
    term = { holder: 'r1', epoch: (await store.acquireLeadership('r1', 600_000)).epoch };
    answers.forEach((f) => f());
    await world.run(() => out.done === true || out.error !== undefined, 1000);
    expect(out.error).toMatchObject({ code: 'not-leader' });
    expect(switchingFrom).toEqual([]);
  });
});
