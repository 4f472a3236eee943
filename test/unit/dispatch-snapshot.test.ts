// Issue 13, item 3: the body is taken once, at dispatch(). A host that changes its object while
// dispatch() waits (for a seq block, for a park's commit, for the broker's confirm) changes nothing:
// what is parked and what is sent are the bytes checked at dispatch().
import { describe, expect, it } from 'vitest';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { Delivery } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { runtimeTrust, signedHeartbeat } from '../support/trust.ts';

async function leader(withAgent: boolean) {
  const world = new World(13);
  const rabbit = new MemoryRabbit('snap');
  const store = createMemoryStore({ now: () => world.now });
  const gate = new Gate('r1');
  const runtime = createRuntime({ devices: ['fw1'], runtimeId: 'r1', namespace: 'snap', ...runtimeTrust, leaderTtl: 1500, maxMessageBytes: 1024, ports: { broker: rabbit.connect({ schedule: gate.run }), store }, clock: world.clock(gate) });
  const held: Delivery[] = [];
  await runtime.start();
  if (withAgent) {
    const agent = rabbit.connect({ schedule: (f) => f() });
    await agent.start();
    await agent.consume(await agent.assertAgentQueue('a1'), (d) => void held.push(d), { prefetch: 100 });
    await agent.publishEvent('heartbeats', signedHeartbeat('a1', 1));
    await world.run(() => false, world.now + 1000);
    expect((await runtime.status()).dispatcher).toBe('sending');
  }
  /** dispatches `body`, lets `change` mutate it at once (dispatch() is still waiting), and settles the call */
  const dispatchThenChange = async <B>(body: B, change: (b: B) => void) => {
    let outcome: string | null = null;
    const p = runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body }).then(
      (d) => (outcome = `seq ${d.seq}`),
      (e: Error & { code?: string }) => (outcome = e.code ?? e.message),
    );
    change(body);
    await world.run(() => outcome !== null, world.now + 5000);
    await p;
    return outcome;
  };
  return { world, runtime, store, held, dispatchThenChange };
}

const original = () => ({ name: 'web', rules: [{ port: 443 }] as Array<{ port: unknown }> });
const grow = (b: ReturnType<typeof original>) => {
  b.name = 'x'.repeat(5 * 1024 * 1024);
  b.rules[0]!.port = 10n;
};

describe('the body is a snapshot taken at dispatch()', () => {
  it('parked: a body changed while the park commits is parked as it was checked', async () => {
    const c = await leader(false);
    expect(await c.dispatchThenChange(original(), grow)).toBe('seq 1');
    const rows = await c.store.fetchParked(10);
    expect(rows.map((r) => r.message.body)).toEqual([original()]);
    await c.runtime.stop();
  });

  it('sent: a body changed while the seq is reserved and the publish confirmed goes out as it was checked; later calls still work', async () => {
    const c = await leader(true);
    expect(await c.dispatchThenChange(original(), grow)).toBe('seq 1');
    expect(await c.dispatchThenChange({ name: 'next' }, () => {})).toBe('seq 2');
    await c.world.run(() => c.held.length >= 2, c.world.now + 1000);
    expect(c.held.map((d) => d.message?.body)).toEqual([original(), { name: 'next' }]);
    expect(Math.max(...c.held.map((d) => d.raw.length))).toBeLessThan(1024);
    await c.runtime.stop();
  });
});
