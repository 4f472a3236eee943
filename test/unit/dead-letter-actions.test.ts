// The dead-letter actions of the runtime over the in-memory adapters: list and show; resend sends the
// refused message again as a new message at the end of the device's line (a new seq, the same
// method, path, body and key), once (a repeat answers `already` with that seq); drop needs a reason
// and is idempotent; an unknown id, a malformed or forged payload and a standby are refused, and
// every outcome is in the audit.
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { Gate } from '../../src/tools/sim/world.ts';
import { signMessage } from '../../src/trust.ts';
import { operatorRuntime } from '../support/operator-runtime.ts';
import { runtimeTrust, signedMessage } from '../support/trust.ts';

/** A runtime with fw1 seqs 1..3 sent, seq 2 refused by the device (dead letter 1). */
async function withRefusal() {
  const c = await operatorRuntime();
  for (const i of [1, 2, 3]) await c.dispatch('fw1', `/vlan/${i}`, { name: `v${i}` });
  await c.applied('fw1', 1);
  await c.refused(c.sent[1]!);
  await c.applied('fw1', 3);
  const [dl] = (await c.settle(c.runtime.deadLetters())).value!;
  return { ...c, dl: dl! };
}

describe('dead letters: list and show', () => {
  it('lists the stored dead letters with their id, the device\'s answer and the signed message; shows one by id; filters', async () => {
    const c = await withRefusal();
    expect(c.dl).toMatchObject({ id: 1, deviceId: 'fw1', seq: 2, status: 422, response: 'vlan 4095 is reserved', resolution: null });
    expect(JSON.parse(c.dl.payload)).toMatchObject({ deviceId: 'fw1', seq: 2, method: 'PUT', path: '/vlan/2', body: { name: 'v2' }, key: 'k' });
    expect((await c.settle(c.runtime.deadLetter(1))).value).toEqual(c.dl);
    expect((await c.settle(c.runtime.deadLetter(99))).value).toBeNull();
    expect((await c.settle(c.runtime.deadLetters({ deviceId: 'fw2' }))).value).toEqual([]);
    expect((await c.settle(c.runtime.deadLetters({ reason: '422', open: true }))).value).toHaveLength(1);
  });
});

describe('dead letters: resend', () => {
  it('dispatches the message again with a new seq at the end of the line; the resolution names it; a repeat is `already` with that seq', async () => {
    const c = await withRefusal();
    const r = (await c.settle(c.runtime.resendDeadLetter(1, { by: 'cli:alice' }))).value!;
    expect(r).toMatchObject({ action: 'dead-letter-resend', target: 'dead-letter:1', outcome: 'done', seq: 4 });
    expect(r.detail).toContain('resent as seq 4, at the end of the device\'s line');
    // the device gets it after seq 3, with what the host first sent
    await c.world.run(() => c.sent.length === 4, c.world.now + 1000);
    expect(c.sent.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(c.sent[3]).toMatchObject({ deviceId: 'fw1', seq: 4, method: 'PUT', path: '/vlan/2', body: { name: 'v2' }, key: 'k' });
    expect((await c.settle(c.runtime.deadLetter(1))).value!.resolution).toMatchObject({ kind: 'resent', by: 'cli:alice', seq: 4 });
    // applied() of the new seq resolves once the device applies it; the old one stays dead-lettered
    await c.applied('fw1', 4);
    expect((await c.settle(c.runtime.applied({ deviceId: 'fw1', seq: 4 }))).error).toBeUndefined();
    expect((await c.settle(c.runtime.applied({ deviceId: 'fw1', seq: 2 }))).error?.code).toBe('device-rejected');

    const again = (await c.settle(c.runtime.resendDeadLetter(1))).value!;
    expect(again).toMatchObject({ outcome: 'already', seq: 4 });
    await c.world.run(() => false, c.world.now + 500);
    expect(c.sent).toHaveLength(4);
    const audit = (await c.settle(c.runtime.audit())).value!;
    expect(audit.map((e) => [e.action, e.target, e.by, e.outcome])).toEqual([
      ['dead-letter-resend', 'dead-letter:1', 'host', 'already'],
      ['dead-letter-resend', 'dead-letter:1', 'cli:alice', 'done'],
    ]);
    // status() shows the newest audit rows
    expect((await c.settle(c.runtime.status())).value!.audit).toEqual(audit);
  });

  it('two resends at once send it once', async () => {
    const c = await withRefusal();
    const [a, b] = await Promise.all([c.settle(c.runtime.resendDeadLetter(1)), c.settle(c.runtime.resendDeadLetter(1))]);
    expect([a.value!.outcome, b.value!.outcome].sort()).toEqual(['already', 'done']);
    expect(a.value!.seq).toBe(b.value!.seq);
    await c.world.run(() => false, c.world.now + 500);
    expect(c.sent.filter((m) => m.path === '/vlan/2')).toHaveLength(2);
  });

  it('refuses a malformed dead letter (seq 0), a forged payload and a payload of another message, sending nothing', async () => {
    const c = await withRefusal();
    await c.receipt({ type: 'dead-letter', anomaly: false, entry: { deviceId: '?', seq: 0, epoch: 0, reason: 'body is not JSON', status: null, response: null, payload: 'garbage' } });
    // seq 4 refused, its dead letter carrying a forged message (a seq applied already is never dead-lettered after)
    await c.dispatch('fw1', '/vlan/4');
    const forged = signMessage(Buffer.alloc(32, 1), { ...c.sent[3]!, path: '/admin' });
    await c.refused(c.sent[3]!, JSON.stringify(forged));
    // seq 5 refused, its dead letter carrying seq 1's message (signed, but another message)
    await c.dispatch('fw1', '/vlan/5');
    await c.refused(c.sent[4]!, JSON.stringify(signedMessage(c.sent[0]!)));
    const other = (await c.settle(c.runtime.deadLetters())).value!;
    const swapped = other.find((d) => d.seq === 5)!;
    const malformed = other.find((d) => d.seq === 0)!;
    const badMac = other.find((d) => d.seq === 4)!;
    const e1 = (await c.settle(c.runtime.resendDeadLetter(malformed.id))).error!;
    expect(e1.code).toBe('invalid-message');
    expect(e1.message).toContain('the agent could not read its message (body is not JSON), so there is no device or seq to send it to');
    const e2 = (await c.settle(c.runtime.resendDeadLetter(badMac.id))).error!;
    expect(e2.code).toBe('invalid-message');
    expect(e2.message).toContain('unauthenticated: wrong mac');
    const e3 = (await c.settle(c.runtime.resendDeadLetter(swapped.id))).error!;
    expect(e3.code).toBe('invalid-message');
    expect(e3.message).toContain('its stored payload is device fw1 seq 1, another message');
    await c.world.run(() => false, c.world.now + 500);
    expect(c.sent).toHaveLength(5);
    expect((await c.settle(c.runtime.deadLetter(badMac.id))).value!.resolution).toBeNull();
    const audit = (await c.settle(c.runtime.audit())).value!;
    expect(audit.map((e) => [e.target, e.outcome])).toEqual([[`dead-letter:${swapped.id}`, 'refused'], [`dead-letter:${badMac.id}`, 'refused'], [`dead-letter:${malformed.id}`, 'refused']]);
  });

  it('a resend the dispatch refuses leaves the dead letter as it was (open), saying why', async () => {
    const c = await withRefusal();
    // a device since removed from the configuration: its dead letter is kept, its message cannot go out
    const gone = { deviceId: 'fw9', seq: 5, method: 'PUT' as const, path: '/x', body: null };
    await c.refused(gone);
    const dl = (await c.settle(c.runtime.deadLetters({ deviceId: 'fw9' }))).value![0]!;
    const e = (await c.settle(c.runtime.resendDeadLetter(dl.id))).error!;
    expect(e.code).toBe('invalid-message');
    expect(e.message).toContain(`dead letter ${dl.id} (device fw9, seq 5) was not resent: message.deviceId "fw9" is not a configured device`);
    expect((await c.settle(c.runtime.deadLetter(dl.id))).value!.resolution).toBeNull();
  });

  it('an unknown id: unknown-dead-letter; a bad id: invalid-request', async () => {
    const c = await withRefusal();
    const e = (await c.settle(c.runtime.resendDeadLetter(42))).error!;
    expect(e.code).toBe('unknown-dead-letter');
    expect(e.message).toBe('there is no dead letter 42 (baton dead-letters lists them); nothing was resent');
    expect((await c.settle(c.runtime.resendDeadLetter(-1))).error!.code).toBe('invalid-request');
  });
});

describe('dead letters: drop', () => {
  it('needs a reason; settles it dropped with the reason; a repeat is `already`; a dropped one can still be resent', async () => {
    const c = await withRefusal();
    for (const reason of ['', '   ', undefined]) {
      const e = (await c.settle(c.runtime.dropDeadLetter(1, { reason: reason as string }))).error!;
      expect(e.code).toBe('invalid-request');
      expect(e.message).toContain('dropDeadLetter(1): a reason is required');
    }
    expect((await c.settle(c.runtime.deadLetter(1))).value!.resolution).toBeNull();
    const r = (await c.settle(c.runtime.dropDeadLetter(1, { reason: 'vlan 2 is not needed any more', by: 'token:noc' }))).value!;
    expect(r).toMatchObject({ action: 'dead-letter-drop', outcome: 'done' });
    expect((await c.settle(c.runtime.deadLetter(1))).value!.resolution).toMatchObject({ kind: 'dropped', by: 'token:noc', detail: 'vlan 2 is not needed any more' });
    expect((await c.settle(c.runtime.dropDeadLetter(1, { reason: 'again' }))).value!.outcome).toBe('already');
    expect((await c.settle(c.runtime.deadLetters({ open: true }))).value).toEqual([]);
    const resent = (await c.settle(c.runtime.resendDeadLetter(1))).value!;
    expect(resent).toMatchObject({ outcome: 'done', seq: 4 });
    expect(resent.detail).toContain('resent as seq 4');
    // and once resent, it cannot be dropped: that would hide that it went out
    const e = (await c.settle(c.runtime.dropDeadLetter(1, { reason: 'oops' }))).error!;
    expect(e.code).toBe('dead-letter-settled');
    expect(e.message).toContain('was resent as seq 4');
  });
});

describe('dead letters: a standby refuses', () => {
  it('resend and drop answer not-leader naming the leader, and change nothing; reads still answer', async () => {
    const c = await withRefusal();
    const gate = new Gate('r2');
    const standby = createRuntime({ devices: ['fw1', 'fw2'], runtimeId: 'r2', namespace: 'op', ...runtimeTrust, leaderTtl: 1500, ports: { broker: c.rabbit.connect({ schedule: gate.run }), store: c.store }, clock: c.world.clock(gate) });
    await c.settle(standby.start());
    await c.world.run(() => false, c.world.now + 300);
    expect((await c.settle(standby.status())).value!.leading).toBe(false);
    const e = (await c.settle(standby.resendDeadLetter(1))).error!;
    expect(e.code).toBe('not-leader');
    expect(e.message).toBe('dead letter 1 was not resent: this runtime (r2) is standing by; runtime r1 leads: ask it (baton status shows who leads)');
    expect((await c.settle(standby.dropDeadLetter(1, { reason: 'x' }))).error!.code).toBe('not-leader');
    expect((await c.settle(standby.deadLetter(1))).value!.resolution).toBeNull();
    expect((await c.settle(c.runtime.audit())).value).toEqual([]);
    expect((await c.settle(standby.drained())).error!.code).toBe('not-leader');
  });
});
