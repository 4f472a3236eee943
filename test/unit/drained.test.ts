// drained(): resolves once every seq accepted before the call (for one device, or all) is applied or
// dead-lettered, on the receipt that settles the last of them (not on a later tick); seqs accepted
// after the call do not hold it; a timeout names what is still outstanding per device; a runtime that
// stops leading rejects its waiters.
import { describe, expect, it } from 'vitest';
import { AppliedLedger } from '../../src/runtime/applied-ledger.ts';
import { Drains } from '../../src/runtime/drained.ts';
import { operatorRuntime } from '../support/operator-runtime.ts';

describe('drained()', () => {
  it('resolves at once when nothing is outstanding', async () => {
    const c = await operatorRuntime();
    expect(await c.settle(c.runtime.drained({ timeoutMs: 10 }), 1)).toEqual({ value: undefined });
  });

  it('resolves on the receipt that settles the last seq accepted before the call; applied or dead-lettered both count', async () => {
    const c = await operatorRuntime();
    for (const i of [1, 2, 3]) await c.dispatch('fw1', `/p/${i}`);
    await c.dispatch('fw2', '/q/1');
    let done = false;
    c.runtime.drained({ timeoutMs: 60_000 }).then(() => (done = true));
    await c.applied('fw1', 1, 2);
    await c.refused(c.sent[2]!);
    // a seq accepted after the call does not hold it
    await c.dispatch('fw1', '/p/4');
    await c.world.run(() => false, c.world.now + 100);
    expect(done).toBe(false);
    await c.applied('fw2', 1);
    await c.world.settle();
    expect(done).toBe(true);
  });

  it('waits for one device only when asked', async () => {
    const c = await operatorRuntime();
    await c.dispatch('fw1', '/p/1');
    await c.dispatch('fw2', '/q/1');
    const p = c.runtime.drained({ deviceId: 'fw2', timeoutMs: 60_000 });
    await c.applied('fw2', 1);
    expect(await c.settle(p, 1)).toEqual({ value: undefined });
  });

  it('times out naming what is still outstanding, per device', async () => {
    const c = await operatorRuntime();
    for (const i of [1, 2, 3]) await c.dispatch('fw1', `/p/${i}`);
    await c.dispatch('fw2', '/q/1');
    await c.applied('fw1', 1);
    await c.applied('fw2', 1);
    const r = await c.settle(c.runtime.drained({ timeoutMs: 2000 }), 3000);
    expect(r.error?.code).toBe('timeout');
    expect(r.error?.message).toBe(
      'drained(): not everything accepted was applied or dead-lettered within 2000 ms; still outstanding: fw1: 2 seqs (2..3). ' +
        'They stay queued and will be delivered (see baton devices: a blocked line waits for baton unblock, a paused one for baton resume)',
    );
  });

  it('refuses an unknown device and a bad timeout, naming them', async () => {
    const c = await operatorRuntime();
    const unknown = await c.settle(c.runtime.drained({ deviceId: 'nope' }));
    expect(unknown.error?.code).toBe('unknown-device');
    expect(unknown.error?.message).toContain('device "nope" is not configured (configured: fw1, fw2)');
    expect((await c.settle(c.runtime.drained({ timeoutMs: 0 }))).error?.code).toBe('invalid-request');
  });

  it('a runtime that stops rejects its waiters with runtime-stopped', async () => {
    const c = await operatorRuntime();
    await c.dispatch('fw1', '/p/1');
    const p = c.runtime.drained({ timeoutMs: 600_000 });
    const r = c.settle(p, 20_000);
    await c.settle(c.runtime.stop(), 20_000).catch(() => {});
    const got = await r;
    expect(got.error?.code).toBe('runtime-stopped');
    expect(got.error?.message).toContain('drained() stopped waiting: the runtime stopped');
  });
});

describe('Drains (the part alone)', () => {
  const timers: Array<() => void> = [];
  const clock = { now: () => 0, monotonic: () => 0, setTimeout: (fn: () => void) => (timers.push(fn), { cancel() {} }) };

  it('a runtime that stops leading rejects its waiters with not-leader, naming the leader; a timeout names a blocked line', async () => {
    const ledger = new AppliedLedger();
    let leader = { leading: true, leader: () => 'r1' };
    const drains = new Drains({ ledger, clock, deviceSet: new Set(['fw1']), runtimeId: 'r1', leadership: () => leader, lineState: () => 'blocked' });
    ledger.dispatched('fw1', 1);
    ledger.dispatched('fw1', 2);
    const first = drains.drained({ timeoutMs: 100 });
    timers.shift()!();
    await expect(first).rejects.toThrow('still outstanding: fw1: 2 seqs (1..2), line blocked.');
    const second = drains.drained();
    leader = { leading: false, leader: () => 'r2' };
    drains.leaderLost();
    await expect(second).rejects.toMatchObject({ code: 'not-leader', message: expect.stringContaining('this runtime (r1) is standing by; runtime r2 leads: ask it') });
  });
});
