// Leadership with a lease discipline: a leader acts only while its lease is certainly valid by its
// own clock, seq blocks die with the term, and a new leader waits out the last term's agent leases.
// Runtimes, agents and the broker are the real ones over in-memory ports and the simulated clock.
import { describe, expect, it } from 'vitest';
import { startAgent } from '../../src/agent/worker.ts';
import { runtimeDefaults } from '../../src/config.ts';
import { DeviceModel } from '../../src/devices/model.ts';
import { isBatonError } from '../../src/errors.ts';
import { LeaseGranter } from '../../src/runtime/lease-granter.ts';
import type { LeaseGrant } from '../../src/side-channel.ts';
import { MemoryRabbit } from '../../src/adapters/memory/broker.ts';
import { createMemoryDeviceClient } from '../../src/adapters/memory/device.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { Broker, Store } from '../../src/ports.ts';
import type { HeartbeatEvent } from '../../src/side-channel.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { type Runtime } from '../../src/api.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { workloadMessage } from '../../src/tools/workload.ts';
import { agentTrust, runtimeTrust } from '../support/trust.ts';

const TTL = runtimeDefaults.leaderTtl;
const LEASE = runtimeDefaults.leaseDuration;

function cluster() {
  const world = new World(7);
  const rabbit = new MemoryRabbit('t');
  const store = createMemoryStore({ now: () => world.now });
  const model = new DeviceModel({ now: () => world.now, fencing: false });
  const devices = [{ id: 'fw1', url: 'http://fw1.sim', fencesByEpoch: false }];
  const trace: string[] = [];
  const note = (s: string) => trace.push(`${world.now}ms ${s}`);

  /** a runtime whose leadership queries can be made to fail or hang, and whose grants are recorded */
  const runtime = (id: string) => {
    const gate = new Gate(id);
    const conn = rabbit.connect({ schedule: gate.run });
    const grants: Array<{ at: number; grant: LeaseGrant }> = [];
    const broker = new Proxy(conn, {
      get(t, p) {
        const v = Reflect.get(t, p) as unknown;
        if (p === 'publishEvent') {
          return (channel: string, payload: LeaseGrant, opts?: object) => {
            if (channel === 'control') grants.push({ at: world.now, grant: payload });
            return conn.publishEvent(channel as never, payload, opts);
          };
        }
        return typeof v === 'function' ? v.bind(t) : v;
      },
    }) as Broker;
    const ctl = { leadership: 'answer' as 'answer' | 'fail' | 'hang' };
    const wrapped = new Proxy(store, {
      get(t, p) {
        if (p === 'acquireLeadership') {
          return (holder: string, ttl: number, renew?: number | null) =>
            ctl.leadership === 'hang' ? new Promise(() => {}) : ctl.leadership === 'fail' ? Promise.reject(new Error('connection reset')) : t.acquireLeadership(holder, ttl, renew);
        }
        return Reflect.get(t, p);
      },
    }) as Store;
    const rt: Runtime = createRuntime({ devices, runtimeId: id, namespace: 't', ...runtimeTrust, ports: { broker, store: wrapped }, clock: world.clock(gate) });
    const won: number[] = [];
    const lost: number[] = [];
    rt.on('leader.won', () => (won.push(world.now), note(`${id} leads`)));
    rt.on('leader.lost', () => (lost.push(world.now), note(`${id} no longer leads`)));
    return { id, rt, ctl, grants, won, lost, gate };
  };

  const agent = (id: string) => {
    const gate = new Gate(id);
    return startAgent(
      { id, devices, namespace: 't', ...agentTrust(id), heartbeatInterval: 250 },
      { broker: rabbit.connect({ schedule: gate.run }), deviceClient: createMemoryDeviceClient(new Map([['fw1', model]])), clock: world.clock(gate), random: world.random, incarnation: `${id}#1` },
    );
  };

  /** runs the world until `p` settles (or `ms` of simulated time pass) */
  const until = async <T>(p: Promise<T>, ms = 60_000): Promise<T> => {
    let done = false;
    const q = p.finally(() => (done = true));
    await world.run(() => done, world.now + ms);
    if (!done) throw new Error(`not settled within ${ms} ms:\n${trace.join('\n')}`);
    return q;
  };

  return { world, store, model, trace, runtime, agent, until };
}

describe('leader lease discipline', () => {
  it('hole 2: a leader whose renewal hangs stops leading on its own clock before another takes over; no seq is handed out twice or interleaved', async () => {
    const c = cluster();
    const r1 = c.runtime('r1');
    const r2 = c.runtime('r2');
    await r1.rt.start();
    await r2.rt.start();
    expect(r1.won).toHaveLength(1);
    await c.agent('a1');
    await c.until(r1.rt.ready());
    await c.agent('a2'); // a candidate, should the takeover's lease gap make a1 give its queue back

    // both runtimes are offered a message every 50 ms; what each accepts is recorded
    const accepted: Array<{ by: string; seq: number; at: number }> = [];
    const refused: Array<{ by: string; at: number; code: string; message: string }> = [];
    let k = 0;
    const offer = () => {
      for (const r of [r1, r2]) {
        r.rt.dispatch(workloadMessage('fw1', k++)).then(
          (d) => accepted.push({ by: r.id, seq: d.seq, at: c.world.now }),
          (e: unknown) => refused.push({ by: r.id, at: c.world.now, code: isBatonError(e) ? e.code : 'other', message: (e as Error).message }),
        );
      }
      if (r2.won.length === 0 || c.world.now < r2.won[0]! + 2 * LEASE) c.world.at(c.world.now + 50, offer);
    };
    offer();
    await c.world.run(() => false, c.world.now + 500);
    const hungAt = c.world.now;
    r1.ctl.leadership = 'hang'; // a half-open connection: the renewal query never answers
    await c.world.run(() => r2.won.length > 0 && c.world.now > r2.won[0]! + 2 * LEASE + 100, c.world.now + 30_000);

    expect(r2.won).toHaveLength(1);
    expect(r1.lost).toHaveLength(1);
    const lostAt = r1.lost[0]!;
    const wonAt = r2.won[0]!;
    // r1 stopped by its own clock: within its TTL of the hang, before r2 could win
    expect(lostAt).toBeLessThanOrEqual(hungAt + TTL);
    expect(lostAt).toBeLessThan(wonAt);
    // nothing accepted by r1 from then on, and every seq r2 handed out is above every seq of r1
    const byR1 = accepted.filter((a) => a.by === 'r1');
    const byR2 = accepted.filter((a) => a.by === 'r2');
    expect(byR1.length).toBeGreaterThan(10);
    expect(byR2.length).toBeGreaterThan(10);
    expect(byR1.every((a) => a.at < lostAt)).toBe(true);
    expect(Math.min(...byR2.map((a) => a.seq))).toBeGreaterThan(Math.max(...byR1.map((a) => a.seq)));
    const seqs = accepted.map((a) => a.seq);
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    // r1 refuses with not-leader, and never names itself as the leader
    const r1Refusals = refused.filter((r) => r.by === 'r1');
    expect(r1Refusals.length).toBeGreaterThan(0);
    for (const r of r1Refusals) {
      expect(r.code).toBe('not-leader');
      expect(r.message).not.toMatch(/runtime r1 leads/);
    }
    expect(r1Refusals.some((r) => /no runtime leads right now/.test(r.message))).toBe(true);
    // no grant from r1 once it stopped leading; r2's first grant waits out r1's last lease (hole 10)
    expect(r1.grants.length).toBeGreaterThan(0);
    expect(r1.grants.filter((g) => g.at >= lostAt)).toEqual([]);
    const st = await r2.rt.status();
    expect(r2.grants.length, JSON.stringify({ c: st.coordinator, d: st.dispatcher, a: st.agents, as: st.assignment, wonAt, trace: c.trace })).toBeGreaterThan(0);
    expect(r2.grants[0]!.at).toBeGreaterThanOrEqual(wonAt + LEASE);
  });

  it('hole 1: a leader that lost and regained leadership does not reuse its cached seq block', async () => {
    const c = cluster();
    const r1 = c.runtime('r1');
    await r1.rt.start();
    const first = [];
    for (let i = 0; i < 5; i++) first.push((await c.until(r1.rt.dispatch(workloadMessage('fw1', i)))).seq);
    expect(first).toEqual([1, 2, 3, 4, 5]); // block 1-1000 cached

    r1.ctl.leadership = 'fail';
    await c.world.run(() => r1.lost.length > 0, c.world.now + 2 * TTL);
    expect(r1.lost).toHaveLength(1);
    const r2 = c.runtime('r2');
    await r2.rt.start();
    await c.world.run(() => r2.won.length > 0, c.world.now + 2 * TTL);
    expect((await c.until(r2.rt.dispatch(workloadMessage('fw1', 5)))).seq).toBe(1001);
    await c.until(r2.rt.stop());

    r1.ctl.leadership = 'answer';
    await c.world.run(() => r1.won.length > 1, c.world.now + 2 * TTL);
    expect(r1.won).toHaveLength(2);
    const again = (await c.until(r1.rt.dispatch(workloadMessage('fw1', 6)))).seq;
    expect(again).toBeGreaterThan(2000); // above r2's whole block 1001-2000, never 6
    // and the store says the same: the device's next seq is past it
    expect((await c.store.deviceStreams()).find((s) => s.deviceId === 'fw1')!.nextSeq).toBeGreaterThan(again);
  });

  it('a renewal that answers only after the lease ran out is ignored; the runtime leads again at the next renewal, in a new local term', async () => {
    const c = cluster();
    const r1 = c.runtime('r1');
    await r1.rt.start();
    expect((await c.until(r1.rt.dispatch(workloadMessage('fw1', 0)))).seq).toBe(1);
    r1.ctl.leadership = 'hang';
    await c.world.run(() => r1.lost.length > 0, c.world.now + 2 * TTL);
    await expect(r1.rt.dispatch(workloadMessage('fw1', 1))).rejects.toMatchObject({ code: 'not-leader', message: expect.stringMatching(/no runtime leads right now/) });
    r1.ctl.leadership = 'answer';
    await c.world.run(() => r1.won.length > 1, c.world.now + TTL);
    expect(r1.won).toHaveLength(2);
    expect((await c.until(r1.rt.dispatch(workloadMessage('fw1', 1)))).seq).toBe(1001);
    expect((await r1.rt.status()).leader).toBe('r1');
  });
});

describe('LeaseGranter (hole 10)', () => {
  const setup = (leading: { now: boolean }) => {
    const world = new World(1);
    const grants: Array<{ at: number; grant: LeaseGrant }> = [];
    const broker = { publishEvent: async (_c: string, g: object) => void grants.push({ at: world.now, grant: g as LeaseGrant }) };
    const granter = new LeaseGranter({ broker, clock: world.clock(new Gate('r')), durationMs: 1500, waitForOldLease: true, mayGrant: () => leading.now, seal: (g) => g });
    let beat = 0;
    const hb = (): HeartbeatEvent => ({ type: 'heartbeat', agentId: 'a1', host: 'h', pid: 1, sentAt: world.now, beat: ++beat, incarnation: 'i1' });
    return { world, grants, granter, hb };
  };

  it('a new leader waits out the last term\'s leases from the moment it wins, not from when it was built', async () => {
    const leading = { now: true };
    const { world, grants, granter, hb } = setup(leading);
    world.at(10_000, () => {});
    await world.run(() => false, 10_000); // built long before it leads
    granter.leaderWon({ continued: false });
    granter.setTarget({ agentId: 'a1', epoch: 1 });
    expect(granter.onHeartbeat(hb())).toBe(false);
    await world.run(() => grants.length > 0, 11_499);
    expect(grants).toEqual([]);
    await world.run(() => grants.length > 0, 12_000);
    expect(grants.map((g) => g.at)).toEqual([11_500]);
  });

  it('a term that continues this runtime\'s own grants at once; nothing is granted while not leading', async () => {
    const leading = { now: true };
    const { world, grants, granter, hb } = setup(leading);
    world.at(10_000, () => {});
    await world.run(() => false, 10_000);
    granter.leaderWon({ continued: true });
    granter.setTarget({ agentId: 'a1', epoch: 1 });
    expect(granter.onHeartbeat(hb())).toBe(true);
    leading.now = false;
    expect(granter.onHeartbeat(hb())).toBe(false);
    expect(grants).toHaveLength(1);
  });
});
