// fate(): accepted, applied or dead-lettered (with the device's answer and the dead letter's
// resolution); a seq never handed out is unknown; waitMs answers on the receipt that settles the
// seq (not later), at waitMs with `accepted`, and stops early when the leadership is lost or the
// runtime stops; a standby answers from the stored tables and refuses to wait.
import { describe, expect, it } from 'vitest';
import { operatorRuntime } from '../support/operator-runtime.ts';
import { simCluster } from '../support/sim-cluster.ts';
import { workloadMessage } from '../../src/tools/workload.ts';

describe('fate() on the leader (the ledger)', () => {
  it('accepted, then applied; a wait answers on the receipt that settles the seq', async () => {
    const c = await operatorRuntime();
    const m = await c.dispatch('fw1', '/p/1');
    expect(await c.runtime.fate(m)).toEqual({ deviceId: 'fw1', seq: m.seq, fate: 'accepted', source: 'ledger' });
    let at: number | null = null;
    const waiting = c.runtime.fate(m, { waitMs: 60_000 }).then((f) => ((at = c.world.now), f));
    await c.world.run(() => false, c.world.now + 700);
    expect(at).toBeNull();
    const before = c.world.now;
    await c.applied('fw1', m.seq);
    await c.world.settle();
    expect(await waiting).toEqual({ deviceId: 'fw1', seq: m.seq, fate: 'applied', source: 'ledger' });
    expect(at).toBe(before);
    // a higher seq applied does not settle a lower one
    const [a, b] = [await c.dispatch('fw2', '/q/1'), await c.dispatch('fw2', '/q/2')];
    await c.applied('fw2', b.seq);
    expect((await c.runtime.fate(a)).fate).toBe('accepted');
  });

  it('dead-lettered with the device\'s answer and the dead letter (open, then as an operator settled it); a wait answers on the dead letter', async () => {
    const c = await operatorRuntime();
    const m = await c.dispatch('fw1', '/p/1');
    const waiting = c.settle(c.runtime.fate(m, { waitMs: 60_000 }), 60_000);
    await c.refused(c.sent[0]!);
    const got = (await waiting).value!;
    const id = got.deadLetter!.id;
    expect(got).toEqual({
      deviceId: 'fw1', seq: m.seq, fate: 'dead-lettered', source: 'ledger',
      answer: { status: 422, reason: 'device rejected the message (422)', response: 'vlan 4095 is reserved' },
      deadLetter: { id, resolution: null },
    });
    await c.settle(c.runtime.dropDeadLetter(id, { reason: 'obsolete', by: 'cli:alice' }));
    expect((await c.settle(c.runtime.fate(m))).value).toMatchObject({ fate: 'dead-lettered', deadLetter: { id, resolution: { kind: 'dropped', by: 'cli:alice' } } });
  });

  it('at waitMs it answers accepted', async () => {
    const c = await operatorRuntime();
    const m = await c.dispatch('fw1', '/p/1');
    const r = await c.settle(c.runtime.fate(m, { waitMs: 1000 }), 2000);
    expect(r.value).toEqual({ deviceId: 'fw1', seq: m.seq, fate: 'accepted', source: 'ledger' });
  });

  it('refuses a seq never handed out, an unconfigured device, a bad seq or waitMs, naming them', async () => {
    const c = await operatorRuntime();
    const m = await c.dispatch('fw1', '/p/1');
    const unknown = await c.settle(c.runtime.fate({ deviceId: 'fw1', seq: m.seq + 1 }));
    expect(unknown.error).toMatchObject({ code: 'unknown-message', details: { deviceId: 'fw1', seq: m.seq + 1, handedOut: m.seq } });
    expect(unknown.error?.message).toBe(`device fw1 has no message with seq ${m.seq + 1}: seqs handed out so far end at ${m.seq}. It was never accepted: dispatch it to have it delivered`);
    expect((await c.settle(c.runtime.fate({ deviceId: 'fw2', seq: 1 }))).error?.message).toContain('device fw2 has no message with seq 1: no seq was handed out to it yet');
    expect((await c.settle(c.runtime.fate({ deviceId: 'nope', seq: 1 }))).error?.code).toBe('unknown-device');
    expect((await c.settle(c.runtime.fate({ deviceId: 'fw1', seq: 0 }))).error).toMatchObject({ code: 'invalid-request', details: { field: 'seq' } });
    expect((await c.settle(c.runtime.fate(m, { waitMs: 60_001 }))).error).toMatchObject({ code: 'invalid-request', details: { field: 'waitMs' } });
  });

  it('a wait ends with not-leader when this runtime stops leading, and with runtime-stopped when it stops', async () => {
    const c = await operatorRuntime();
    const m = await c.dispatch('fw1', '/p/1');
    const waiting = c.settle(c.runtime.fate(m, { waitMs: 60_000 }), 30_000);
    await c.store.releaseLeadership('r1');
    await c.store.acquireLeadership('r2', 60_000, null, 'http://r2:8080');
    const lost = await waiting;
    expect(lost.error).toMatchObject({ code: 'not-leader', details: { leader: 'r2' } });
    expect(lost.error?.message).toContain('fate() stopped waiting: this runtime no longer leads');

    const d = await operatorRuntime();
    const n = await d.dispatch('fw1', '/p/1');
    const r = d.settle(d.runtime.fate(n, { waitMs: 60_000 }), 30_000);
    await d.settle(d.runtime.stop(), 20_000);
    expect((await r).error?.code).toBe('runtime-stopped');
  });
});

/** r1 leads, r2 stands by, agent a1 active; one message applied (`first`) */
async function leaderAndStandby(seed: number) {
  const c = simCluster({ seed, devices: 1 });
  const model = c.models.get('fw1')!;
  const r1 = await c.runtime('r1');
  const r2 = await c.runtime('r2');
  let active = false;
  r1.on('coordinator.active', () => (active = true));
  await c.agent('a1');
  expect(await c.world.run(() => active, 5000)).toBe(true);
  const first = await r1.dispatch(workloadMessage('fw1', 0));
  await c.world.run(() => model.applied.some((a) => a.seq === first.seq), c.world.now + 2000);
  return { c, model, r1, r2, first };
}

describe('fate() on a standby (the stored tables)', () => {
  it('answers applied and unknown as stored; refuses to wait for a seq not settled there, naming the leader', async () => {
    const { c, model, r1, r2, first } = await leaderAndStandby(5);
    await c.world.run(() => false, c.world.now + 500);
    expect(await r2.fate(first)).toEqual({ deviceId: 'fw1', seq: first.seq, fate: 'applied', source: 'stored' });
    expect(await r1.fate(first)).toMatchObject({ fate: 'applied', source: 'ledger' });
    await expect(r2.fate({ deviceId: 'fw1', seq: 5000 })).rejects.toMatchObject({ code: 'unknown-message' });

    // a seq handed out and not settled yet (the device answers 503, retried): accepted without a wait, refused with one
    model.errorRate = 1;
    const second = await r1.dispatch(workloadMessage('fw1', 1));
    expect(await r2.fate(second)).toEqual({ deviceId: 'fw1', seq: second.seq, fate: 'accepted', source: 'stored' });
    await expect(r2.fate(second, { waitMs: 1000 })).rejects.toMatchObject({ code: 'not-leader', details: { leader: 'r1' } });
    c.killAll();
  });
});

describe('fate() across a change of leader', () => {
  it('the new leader answers accepted (not unknown) for a seq the old one sent and nobody settled yet, then applied on its receipt', async () => {
    const { c, model, r1, r2, first } = await leaderAndStandby(6);
    model.errorRate = 1; // the device answers 503 (retried): the next seq stays outstanding
    const second = await r1.dispatch(workloadMessage('fw1', 1));
    c.kill('r1');
    let r2Leads = false;
    r2.on('leader.won', () => (r2Leads = true));
    expect(await c.world.run(() => r2Leads, c.world.now + 20_000)).toBe(true);
    const settle = async <T>(p: Promise<T>) => {
      let out: T | Error | undefined;
      p.then((v) => (out = v), (e: Error) => (out = e));
      await c.world.run(() => out !== undefined, c.world.now + 20_000);
      return out!;
    };
    expect(await settle(r2.fate(first))).toMatchObject({ fate: 'applied', source: 'ledger' });
    expect(await settle(r2.fate(second))).toEqual({ deviceId: 'fw1', seq: second.seq, fate: 'accepted', source: 'ledger' });
    const waiting = r2.fate(second, { waitMs: 60_000 });
    model.errorRate = 0;
    expect(await settle(waiting)).toEqual({ deviceId: 'fw1', seq: second.seq, fate: 'applied', source: 'ledger' });
    c.killAll();
  });
});
