// The operator's actions on a device's line, at the runtime's edge (memory broker and store, a
// hand-driven agent): pause keeps a device's new messages in the database while the others flow,
// resume sends them in seq order; a line the agent blocked holds the device's messages back until
// unblock skips the refused seq (its dead letter resolved) or retries it (sent again first, then
// what was kept; applied, it is released and counts applied). Each action is idempotent, audited,
// refused on a standby and for an unknown device; unblock of a line not blocked says how it stands.
import { describe, expect, it } from 'vitest';
import { streamKey, messageProblem } from '../../src/trust.ts';
import { blockedAtTwo, leadingRig, lineRig } from '../support/line-harness.ts';
import { TEST_SECRET } from '../support/trust.ts';

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

describe('pause and resume', () => {
  it('a paused device keeps its new messages in the database while the others flow; resume sends them in seq order, then new ones go straight out', async () => {
    const c = await leadingRig();
    await c.dispatch(c.r1, 'fw1', 2);
    expect(c.seqsOf('fw1')).toEqual([1, 2]);

    const paused = await c.r1.pause('fw1', { by: 'cli:alice' });
    expect(paused).toMatchObject({ action: 'pause', target: 'fw1', outcome: 'done' });
    expect(paused.detail).toContain('baton resume fw1');
    await c.dispatch(c.r1, 'fw1', 3);
    await c.dispatch(c.r1, 'fw2', 1);
    await c.run(100);
    expect(c.seqsOf('fw1')).toEqual([1, 2]);
    expect(c.seqsOf('fw2')).toEqual([1]);
    const fw1 = (await c.r1.devices()).find((d) => d.deviceId === 'fw1')!;
    expect(fw1).toMatchObject({ state: 'paused', parked: 3 });
    expect((await c.r1.status()).devices.find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'paused' });
    // the agent learns it with its next grant
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines).toEqual({ fw1: { paused: true, blockedAt: null, retry: null, releasedThrough: 0 } });
    // applied() behind a pause says so and what frees it
    expect(await outcome(c.drive(c.r1.applied({ deviceId: 'fw1', seq: 4 }, { timeoutMs: 300 })))).toMatch(/timeout: .*device fw1 is paused \(by cli:alice.*baton resume fw1/);

    expect(await c.r1.pause('fw1')).toMatchObject({ outcome: 'already' });
    const resumed = await c.r1.resume('fw1', { by: 'cli:bob' });
    expect(resumed).toMatchObject({ action: 'resume', outcome: 'done' });
    await c.run(200);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 4, 5]);
    expect((await c.r1.devices()).find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'flowing', parked: 0 });
    await c.dispatch(c.r1, 'fw1', 1);
    await c.run(50);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await c.r1.resume('fw1')).toMatchObject({ outcome: 'already' });
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines).toBeUndefined();

    const audit = await c.r1.audit();
    expect(audit.map((a) => `${a.action} ${a.target} ${a.by} ${a.outcome}`)).toEqual(['resume fw1 host already', 'resume fw1 cli:bob done', 'pause fw1 host already', 'pause fw1 cli:alice done']);
    expect(audit[1]!.id).toBe(resumed.auditId);
  });

  it('refusals: a standby names the leader, an unknown device is named, unblock of a line not blocked says how it stands', async () => {
    const c = await leadingRig();
    const r2 = await c.start('r2');
    await c.run(100);
    expect(await outcome(r2.pause('fw1'))).toMatch(/^not-leader: this runtime \(r2\) is standing by; runtime r1 leads: ask it to pause device fw1/);
    expect(await outcome(c.r1.pause('fw9'))).toMatch(/^unknown-device: device "fw9" is not configured on this runtime \(its devices: fw1, fw2\)/);
    expect(await outcome(c.r1.unblock('fw1', { action: 'skip' }))).toMatch(/^not-blocked: device fw1 is not blocked: its line flows; there is nothing to unblock/);
    await c.r1.pause('fw1');
    expect(await outcome(c.r1.unblock('fw1', { action: 'retry' }))).toMatch(/^not-blocked: device fw1 is not blocked: it is paused \(baton resume fw1/);
    const audit = await c.r1.audit();
    expect(audit.map((a) => `${a.action} ${a.outcome}`)).toEqual(['unblock-retry refused', 'pause done', 'unblock-skip refused']);
  });
});

describe('a blocked line', () => {
  /** fw1's seqs 1..3 delivered, seq 2 refused with the line blocked there, seqs 4 and 5 dispatched after */
  async function blocked() {
    const c = await blockedAtTwo();
    await c.dispatch(c.r1, 'fw1', 2);
    await c.run(100);
    return c;
  }

  it('is held by its order (whatever agent serves it): the device\'s new messages stay parked; devices() and applied() say what frees it', async () => {
    const c = await blocked();
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3]);
    const v = (await c.r1.devices()).find((d) => d.deviceId === 'fw1')!;
    expect(v).toMatchObject({ state: 'blocked', parked: 2, blocked: { seq: 2, status: null, response: null } });
    expect(v.blocked!.reason).toContain('seq 2 refused (status 422, answer "vlan 4095 is reserved")');
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines).toEqual({ fw1: { paused: false, blockedAt: 2, retry: null, releasedThrough: 0 } });
    expect(await outcome(c.drive(c.r1.applied({ deviceId: 'fw1', seq: 5 }, { timeoutMs: 300 })))).toMatch(/blocked at seq 2; seq 5 stays queued.*baton unblock fw1 --retry sends seq 2 again first; or baton unblock fw1 --skip/);
    // a dead letter that does not block (onPermanent=skip) holds nothing
    await c.dispatch(c.r1, 'fw2', 1);
    await c.refuse(c.deliveries.find((m) => m.deviceId === 'fw2')!, { blocked: false });
    await c.dispatch(c.r1, 'fw2', 1);
    const fw2 = c.seqsOf('fw2');
    expect(fw2).toHaveLength(2);
    expect(fw2[0]).toBe(1);
    expect(fw2[1]).toBeGreaterThan(1);
  });

  it('skip: the dead letter is resolved skipped, what was kept goes out in order, the line flows; a repeat is already', async () => {
    const c = await blocked();
    const r = await c.r1.unblock('fw1', { action: 'skip', by: 'cli:alice' });
    expect(r).toMatchObject({ action: 'unblock-skip', outcome: 'done' });
    expect(r.detail).toContain('seq 2 of device fw1 skipped: it stays dead-lettered');
    await c.run(200);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 4, 5]);
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'skipped', by: 'cli:alice' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
    await c.dispatch(c.r1, 'fw1', 1);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 4, 5, 6]);
    expect((await c.r1.devices()).find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'flowing', blocked: null, parked: 0 });
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines).toEqual({ fw1: { paused: false, blockedAt: 2, retry: null, releasedThrough: 2 } });
    expect(await c.r1.unblock('fw1', { action: 'skip' })).toMatchObject({ outcome: 'already' });
    expect(await outcome(c.r1.unblock('fw1', { action: 'retry' }))).toMatch(/^not-blocked: .*its last block, at seq 2, was released/);
  });

  it('retry: the refused message goes out again first, then what was kept; applied, the line is released, its dead letter resolved retried, and applied() of it resolves', async () => {
    const c = await blocked();
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
    const r = await c.r1.unblock('fw1', { action: 'retry', by: 'cli:alice' });
    expect(r).toMatchObject({ action: 'unblock-retry', outcome: 'done' });
    await c.run(200);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5]);
    // sent again as the runtime signs every message
    expect(messageProblem(streamKey(TEST_SECRET), c.deliveries.filter((m) => m.deviceId === 'fw1')[3]!)).toBeNull();
    await c.heartbeat();
    const order = c.grants.at(-1)!.lines!.fw1!;
    expect(order).toMatchObject({ blockedAt: 2, releasedThrough: 0, retry: { seq: 2 } });
    expect(await c.r1.unblock('fw1', { action: 'retry' })).toMatchObject({ outcome: 'already' });
    // new messages flow (the agent holds them until seq 2 went through)
    await c.dispatch(c.r1, 'fw1', 1);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5, 6]);

    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2 }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'retried', by: 'cli:alice' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines!.fw1).toEqual({ paused: false, blockedAt: 2, retry: null, releasedThrough: 2 });
    expect(await c.r1.unblock('fw1', { action: 'retry' })).toMatchObject({ outcome: 'already' });
    expect((await c.r1.devices()).find((d) => d.deviceId === 'fw1')).toMatchObject({ blocked: null });
    // the first refusal's receipt taken again late (it had gone back to the queue) reopens nothing
    await c.refuse(c.refused);
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'retried' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
    expect((await c.store.lineOrders())[0]!.order).toEqual({ paused: false, blockedAt: 2, retry: null, releasedThrough: 2 });
  });

  it('a retry refused again blocks the line again; the next retry has a higher n and is sent again', async () => {
    const c = await blocked();
    await c.r1.unblock('fw1', { action: 'retry' });
    await c.run(100);
    await c.heartbeat();
    const first = c.grants.at(-1)!.lines!.fw1!.retry!.n;
    // the first refusal's receipt taken again late is not the retry's outcome: nothing changes
    await c.refuse(c.refused);
    expect((await c.store.lineOrders())[0]!.order.retry).toEqual({ seq: 2, n: first });
    // the retry refused: its receipt names it
    await c.refuse(c.refused, { retry: first });
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines!.fw1).toEqual({ paused: false, blockedAt: 2, retry: null, releasedThrough: 0 });
    await c.dispatch(c.r1, 'fw1', 1);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5]);
    expect((await c.r1.devices()).find((d) => d.deviceId === 'fw1')).toMatchObject({ state: 'blocked', parked: 1 });
    expect(await c.r1.unblock('fw1', { action: 'retry' })).toMatchObject({ outcome: 'done' });
    await c.run(100);
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines!.fw1!.retry!.n).toBeGreaterThan(first);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5, 2, 6]);
  });

  it('a block above a pending retry (its receipt first, the applied one still on its way) settles the retry as applied and blocks there', async () => {
    const c = await blocked();
    await c.r1.unblock('fw1', { action: 'retry' });
    await c.run(100);
    // the agent applied seq 2, sent 4 and 5; the device refused 5: that receipt comes before seq 2's
    await c.refuse(c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 5)!);
    await c.heartbeat();
    expect(c.grants.at(-1)!.lines!.fw1).toEqual({ paused: false, blockedAt: 5, retry: null, releasedThrough: 2 });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'retried' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
    // the applied receipt, late, changes nothing
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 4 }] });
    expect((await c.store.lineOrders())[0]!.order).toEqual({ paused: false, blockedAt: 5, retry: null, releasedThrough: 2 });
  });

  it("is recorded from the active agent's report when its dead letter is late (the next agent holds the line too); a retry waits for the dead letter", async () => {
    const c = await leadingRig();
    await c.dispatch(c.r1, 'fw1', 3);
    const report = { deviceId: 'fw1', state: 'blocked' as const, seq: 2, status: 422, response: 'no', reason: 'seq 2 rejected', since: 0 };
    await c.heartbeat([report]);
    await c.heartbeat([report]);
    expect(c.grants.at(-1)!.lines).toEqual({ fw1: { paused: false, blockedAt: 2, retry: null, releasedThrough: 0 } });
    await c.dispatch(c.r1, 'fw1', 1);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3]);
    expect(await outcome(c.r1.unblock('fw1', { action: 'retry' }))).toMatch(/^unknown-dead-letter: .*no dead letter of it is stored yet/);
    await c.refuse(c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 2)!);
    expect(await c.r1.unblock('fw1', { action: 'retry' })).toMatchObject({ outcome: 'done' });
    // a report of the block once a retry is pending changes nothing
    await c.heartbeat([report]);
    expect((await c.store.lineOrders())[0]!.order).toMatchObject({ blockedAt: 2, retry: { seq: 2 } });
  });

  it('outlives its leader: the runtime that takes over grants the orders with its first lease, keeps the line held, and publishes a pending retry again', async () => {
    const c = await blocked();
    const r2 = await c.start('r2');
    await c.r1.pause('fw2');
    await c.dispatch(c.r1, 'fw2', 1);
    await c.r1.unblock('fw1', { action: 'retry' });
    await c.run(100);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5]);
    c.kill('r1');
    const grantsBefore = c.grants.length;
    let leads = false;
    r2.on('leader.won', () => (leads = true));
    await c.world.run(() => leads, c.world.now + 5000);
    for (let i = 0; i < 100 && c.grants.length === grantsBefore; i++) await c.heartbeat();
    const first = c.grants[grantsBefore]!;
    expect(first.lines).toMatchObject({ fw1: { blockedAt: 2, retry: { seq: 2 } }, fw2: { paused: true } });
    await c.run(200);
    // the retried message once more (an agent acts on each retry once); fw2 stays held: its row
    // parked under r1 is left out of r2's replay, and what r2 takes is parked behind it
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5, 2]);
    await c.dispatch(r2, 'fw2', 1);
    await c.run(100);
    expect(c.seqsOf('fw2')).toEqual([]);
    expect((await r2.devices()).find((d) => d.deviceId === 'fw2')).toMatchObject({ state: 'paused', parked: 2 });
    await r2.resume('fw2');
    await c.run(100);
    const fw2 = c.seqsOf('fw2');
    expect(fw2).toHaveLength(2);
    expect(fw2[0]).toBe(1);
    expect(fw2[1]).toBeGreaterThan(1);
  });
});

describe('before the runtime runs', () => {
  it('actions refuse until start() finished', async () => {
    const c = await lineRig();
    c.runtimes.clear();
    const { createRuntime } = await import('../../src/runtime/runtime.ts');
    const r = createRuntime({ devices: ['fw1'], runtimeId: 'r0', namespace: 'ln', secret: TEST_SECRET, ports: { store: c.store } });
    expect(await outcome(r.pause('fw1'))).toMatch(/^runtime-not-started: runtime.pause\(\) before start\(\) finished/);
  });
});
