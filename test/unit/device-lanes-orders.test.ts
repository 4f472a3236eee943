// Issue 15 on the agent's side: the device lanes obey the runtime's line orders (LineOrder in
// src/ports.ts). A pause holds a line (the request on the wire finishes); a line a refusal blocked
// stays blocked until an order releases its seq (skip) or orders it sent again (retry, once per
// (seq, n)); an order's block holds a line this agent never saw refused. "Nothing more was sent"
// is checked once every ready continuation ran (`quiet`): the device answers at once, so nothing is
// left pending but what the lanes hold.
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DeviceLanes } from '../../src/agent/device-lanes.ts';
import type { DeadLetterKind } from '../../src/agent/dead-letters.ts';
import { holdOf, stepFor } from '../../src/agent/line-orders.ts';
import { systemClock } from '../../src/clock.ts';
import { silentLogger } from '../../src/logger.ts';
import type { Clock, DeadLetter, DeviceClient, DeviceConfig, DeviceOutcome, LineOrder, WireMessage } from '../../src/ports.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { encodeMessage } from '../../src/wire.ts';

const devices = new Map<string, DeviceConfig>(['d1', 'd2'].map((id) => [id, { id, url: `http://${id}` }]));
const msg = (deviceId: string, seq: number): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: null });
function delivery(deviceId: string, seq: number) {
  const m = msg(deviceId, seq);
  const d = { message: m, raw: encodeMessage(m), redelivered: false, acked: false, nacked: null as boolean | null, ack: () => void (d.acked = true), nack: (r: boolean) => void (d.nacked = r) };
  return d;
}
const applied: DeviceOutcome = { kind: 'applied', status: 200 };
const refused: DeviceOutcome = { kind: 'permanent', status: 404, reason: 'device answered 404', response: 'no such rule' };
/** every continuation that is ready has run */
const quiet = () => new Promise<void>((resolve) => setImmediate(resolve));
const order = (o: Partial<LineOrder>): LineOrder => ({ paused: false, blockedAt: null, retry: null, releasedThrough: 0, ...o });

/** Lanes over a device whose answers the test scripts (`answer`), recording what was sent, applied and dead-lettered. */
function setup(onPermanent: 'block' | 'skip' = 'block', simulated?: Clock) {
  const t = {
    answer: (_m: WireMessage): DeviceOutcome | Promise<DeviceOutcome> => applied,
    /** what the device says it applied (null: it does not say) */
    watermark: (): number | null => null,
    /** the epoch of the lease the lanes write under */
    epoch: 1,
    sent: [] as string[],
    applied: [] as string[],
    dead: [] as Array<DeadLetter & { kind: DeadLetterKind; retry?: number | null }>,
    /** dead letters to refuse before recording (the receipts' broker is down) */
    failDead: 0,
  };
  const client: DeviceClient = {
    send: async (_d, m) => (t.sent.push(`${m.deviceId}:${m.seq}`), t.answer(m)),
    watermark: async () => t.watermark(),
    close: async () => {},
  };
  const clock = { ...systemClock, wall: 1000, now: () => clock.wall };
  const l = new DeviceLanes({
    agentId: 'a1',
    devices,
    client,
    clock: simulated ?? (clock as Clock),
    logger: silentLogger(),
    onPermanent,
    retryInitialMs: 1,
    retryMaxMs: 2,
    lease: { acquire: async () => t.epoch },
    applied: (d, s, retry) => void t.applied.push(retry ? `${d}:${s} (retry ${retry})` : `${d}:${s}`),
    deadLetter: async (e, kind, retry) => {
      if (t.failDead > 0 && t.failDead--) throw new Error('the broker refused the receipt');
      t.dead.push({ ...e, kind, retry: retry ?? null });
    },
    fenced: () => {},
  });
  const sentOf = (deviceId: string) => t.sent.filter((s) => s.startsWith(`${deviceId}:`)).map((s) => Number(s.split(':')[1]));
  const appliedUntil = (deviceId: string, seq: number) => new Promise<void>((resolve) => l.on('applied', (e) => e.deviceId === deviceId && e.seq === seq && resolve()));
  return { t, l, clock, sentOf, appliedUntil };
}

/** delivers a copy of d1's `seq` and waits for the lanes to ack it unsent */
async function copySkipped(l: DeviceLanes, seq: number) {
  const copy = delivery('d1', seq);
  const skipped = once(l, 'skipped');
  l.accept(copy);
  await skipped;
  return copy;
}

/** d1 refused seq 2 (onPermanent=block) with 3 and 4 behind it. */
async function blockedAt2() {
  const s = setup();
  s.t.answer = (m) => (m.seq === 2 ? refused : applied);
  const ds = [1, 2, 3, 4].map((seq) => delivery('d1', seq));
  const blocked = once(s.l, 'blocked');
  ds.forEach((d) => s.l.accept(d));
  await blocked;
  await quiet();
  expect(s.sentOf('d1')).toEqual([1, 2]);
  return { ...s, ds };
}

describe('a paused line', () => {
  it('holds what arrives and sends nothing (the other devices go on), reports paused, and delivers in order once resumed', async () => {
    const { t, l, clock, sentOf, appliedUntil } = setup();
    let done = appliedUntil('d1', 1);
    l.accept(delivery('d1', 1));
    await done;
    clock.wall = 2000;
    l.setOrders({ d1: order({ paused: true }) });
    const held = [2, 3, 4].map((s) => delivery('d1', s));
    held.forEach((d) => l.accept(d));
    done = appliedUntil('d2', 1);
    l.accept(delivery('d2', 1));
    await done;
    await quiet();
    expect(sentOf('d1')).toEqual([1]);
    expect(held.some((d) => d.acked || d.nacked !== null)).toBe(false);
    expect(l.reports()).toEqual([{ deviceId: 'd1', state: 'paused', seq: 2, held: 3, reason: expect.stringMatching(/line order pauses.*holds 3 message.*baton resume d1/), since: 2000 }]);
    // a renewal that still pauses it changes nothing, nor its since
    clock.wall = 3000;
    l.setOrders({ d1: order({ paused: true }) });
    await quiet();
    expect(sentOf('d1')).toEqual([1]);
    expect(l.reports()[0]).toMatchObject({ state: 'paused', since: 2000 });
    done = appliedUntil('d1', 4);
    l.setOrders({});
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 3, 4]);
    expect(t.applied.filter((a) => a.startsWith('d1'))).toEqual(['d1:1', 'd1:2', 'd1:3', 'd1:4']);
    expect(held.every((d) => d.acked)).toBe(true);
    expect(l.reports()).toEqual([]);
  });

  it('lets the request on the wire finish and settle; a transient answer is not retried while paused', async () => {
    const world = new World(1);
    const { t, l, sentOf, appliedUntil } = setup('block', world.clock(new Gate('agent')));
    let answer!: (o: DeviceOutcome) => void;
    t.answer = () => (t.sent.length === 1 ? new Promise((resolve) => (answer = resolve)) : applied);
    const ds = [1, 2].map((s) => delivery('d1', s));
    ds.forEach((d) => l.accept(d));
    await quiet();
    expect(sentOf('d1')).toEqual([1]);
    l.setOrders({ d1: order({ paused: true }) });
    const retry = once(l, 'retry');
    answer({ kind: 'transient', status: 503, reason: 'device answered 503' });
    await retry;
    // the backoff ends (1-2 simulated ms); the next attempt does not go out while the line is paused
    await world.runTo(() => false, 100);
    expect(sentOf('d1')).toEqual([1]);
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'paused', seq: 1, held: 2 }]);
    const done = appliedUntil('d1', 2);
    l.setOrders({});
    await done;
    expect(sentOf('d1')).toEqual([1, 1, 2]);
    expect(ds.map((d) => d.acked)).toEqual([true, true]);
  });

  it('the answer on the wire when paused is applied and acked', async () => {
    const { t, l, sentOf } = setup();
    let answer!: (o: DeviceOutcome) => void;
    t.answer = (m) => (m.seq === 1 ? new Promise((resolve) => (answer = resolve)) : applied);
    const ds = [1, 2].map((s) => delivery('d1', s));
    ds.forEach((d) => l.accept(d));
    await quiet();
    l.setOrders({ d1: order({ paused: true }) });
    const done = once(l, 'applied');
    answer(applied);
    await done;
    await quiet();
    expect(sentOf('d1')).toEqual([1]);
    expect(ds.map((d) => d.acked)).toEqual([true, false]);
    expect(t.applied).toEqual(['d1:1']);
  });
});

describe('a line a refusal blocked', () => {
  it('whose dead letter could not be recorded: the refused message that comes back records it then (the device is not asked again)', async () => {
    const s = setup();
    s.t.failDead = 1;
    s.t.answer = (m) => (m.seq === 2 ? refused : applied);
    const ds = [1, 2, 3].map((seq) => delivery('d1', seq));
    const first = once(s.l, 'blocked');
    ds.forEach((d) => s.l.accept(d));
    await first;
    expect(ds[1]!.nacked).toBe(true);
    expect(s.t.dead).toEqual([]);
    expect(s.l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, reason: expect.stringMatching(/could not be recorded/) }]);
    // the broker hands it back: its dead letter is recorded (blocking), with the device's answer
    const again = delivery('d1', 2);
    const recorded = once(s.l, 'dead-letter');
    s.l.accept(again);
    await recorded;
    await quiet();
    expect(s.sentOf('d1')).toEqual([1, 2]);
    expect(s.t.dead.map((d) => [d.seq, d.kind, d.reason, d.status])).toEqual([[2, 'blocking', 'device answered 404', 404]]);
    expect(again.acked).toBe(true);
    expect(s.l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, reason: expect.stringMatching(/it is dead-lettered/) }]);
  });

  it('dead-letters the refused message as blocking (its receipt says blocked) and says what frees it; under onPermanent=skip it is only rejected', async () => {
    const { t, l, ds } = await blockedAt2();
    expect(t.dead).toMatchObject([{ deviceId: 'd1', seq: 2, status: 404, response: 'no such rule', kind: 'blocking' }]);
    expect(ds.map((d) => d.acked)).toEqual([true, true, false, false]);
    const [report] = l.reports();
    expect(report).toMatchObject({ deviceId: 'd1', state: 'blocked', seq: 2, status: 404, response: 'no such rule' });
    expect(report!.reason).toMatch(/baton unblock d1 --retry \(after fixing the device\) or baton unblock d1 --skip/);
    expect(report!.reason).not.toMatch(/restart/);

    const skip = setup('skip');
    skip.t.answer = (m) => (m.seq === 1 ? refused : applied);
    const done = skip.appliedUntil('d1', 2);
    [1, 2].forEach((s) => skip.l.accept(delivery('d1', s)));
    await done;
    expect(skip.t.dead).toMatchObject([{ seq: 1, kind: 'rejected' }]);
  });

  it('stays blocked under grants that say nothing of its seq (the runtime has not heard of the block yet), and while paused reports blocked', async () => {
    const { l, sentOf } = await blockedAt2();
    l.setOrders({});
    l.setOrders({ d1: order({ releasedThrough: 1 }) });
    l.setOrders({ d1: order({ blockedAt: 1, releasedThrough: 0 }) });
    l.setOrders({ d2: order({ releasedThrough: 9 }) });
    await quiet();
    expect(sentOf('d1')).toEqual([1, 2]);
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, status: 404 }]);
    l.setOrders({ d1: order({ paused: true, blockedAt: 2, releasedThrough: 1 }) });
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, status: 404 }]);
    // a give-back returns what it holds; the block stays
    expect(await l.giveBack()).toBe(2);
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2 }]);
  });

  it('goes on with the next held message once an order releases its seq (skip); the refused one stays dead-lettered, unsent', async () => {
    const { t, l, sentOf, appliedUntil, ds } = await blockedAt2();
    const unblocked = once(l, 'unblocked');
    const done = appliedUntil('d1', 4);
    l.setOrders({ d1: order({ blockedAt: null, releasedThrough: 2 }) });
    expect(await unblocked).toEqual([{ deviceId: 'd1', seq: 2 }]);
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 3, 4]);
    expect(t.dead).toHaveLength(1);
    expect(ds.every((d) => d.acked)).toBe(true);
    expect(l.reports()).toEqual([]);
    // the release is for good: a later grant without the order does not block it again
    const after = appliedUntil('d1', 5);
    l.setOrders({});
    l.accept(delivery('d1', 5));
    await after;
  });

  it('sends an ordered retry once, first (it arrives behind the held messages), then the rest in order', async () => {
    const { t, l, sentOf, appliedUntil } = await blockedAt2();
    t.answer = () => applied; // the operator fixed the device
    l.setOrders({ d1: order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 }) });
    await quiet();
    // nothing goes until the retry's delivery arrives
    expect(sentOf('d1')).toEqual([1, 2]);
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, reason: expect.stringMatching(/sent again \(retry 1\)/) }]);
    const done = appliedUntil('d1', 4);
    const again = delivery('d1', 2);
    l.accept(again);
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 2, 3, 4]);
    // the retry's receipt names it: the runtime tells it from a seq skipped as applied before
    expect(t.applied).toEqual(['d1:1', 'd1:2 (retry 1)', 'd1:3', 'd1:4']);
    expect(again.acked).toBe(true);
    expect(l.reports()).toEqual([]);
    // the runtime has not settled it yet: its grants still carry the same retry; another copy is acked unsent
    l.setOrders({ d1: order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 }) });
    const copy = await copySkipped(l, 2);
    const next = appliedUntil('d1', 5);
    l.accept(delivery('d1', 5));
    await next;
    expect(sentOf('d1')).toEqual([1, 2, 2, 3, 4, 5]);
    expect(copy.acked).toBe(true);
  });

  it('a retry refused again dead-letters it again (blocking) and blocks again; the same (seq, n) is not sent again, a new n is', async () => {
    const { t, l, sentOf, appliedUntil } = await blockedAt2();
    const retry1 = order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 });
    l.setOrders({ d1: retry1 });
    const blocked = once(l, 'blocked');
    l.accept(delivery('d1', 2));
    await blocked;
    await quiet();
    expect(sentOf('d1')).toEqual([1, 2, 2]);
    // the second names the retry it answers: the runtime tells it from the first one's receipt taken late
    expect(t.dead.map((d) => [d.seq, d.kind, d.retry])).toEqual([[2, 'blocking', null], [2, 'blocking', 1]]);
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2, status: 404 }]);
    // the same retry in later grants, and a copy of seq 2: nothing is sent; the copy waits (it may be
    // the next retry's, published before the grant that orders it arrives)
    l.setOrders({ d1: retry1 });
    const copy = delivery('d1', 2);
    l.accept(copy);
    l.setOrders({ d1: retry1 });
    await quiet();
    expect(sentOf('d1')).toEqual([1, 2, 2]);
    expect(copy.acked).toBe(false);
    // the operator fixes the device and retries again: the copy that waits goes as the retry
    t.answer = () => applied;
    const done = appliedUntil('d1', 4);
    l.setOrders({ d1: order({ blockedAt: 2, retry: { seq: 2, n: 2 }, releasedThrough: 1 }) });
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 2, 2, 3, 4]);
    expect(copy.acked).toBe(true);
    // a later copy is a redelivery of an applied seq: skipped unsent
    const late = delivery('d1', 2);
    const skipped = once(l, 'skipped');
    l.accept(late);
    await skipped;
    expect(late.acked).toBe(true);
    expect(sentOf('d1')).toEqual([1, 2, 2, 2, 3, 4]);
  });

  it('the retried message arriving before the grant that orders the retry waits for it, and goes as the retry', async () => {
    const { t, l, sentOf, appliedUntil } = await blockedAt2();
    t.answer = () => applied;
    const early = delivery('d1', 2);
    l.accept(early);
    await quiet();
    expect(sentOf('d1')).toEqual([1, 2]);
    expect(early.acked).toBe(false);
    const done = appliedUntil('d1', 4);
    l.setOrders({ d1: order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 }) });
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 2, 3, 4]);
    expect(early.acked).toBe(true);
  });

  it('a retry that fails transiently is retried as usual, first', async () => {
    const { t, l, sentOf, appliedUntil } = await blockedAt2();
    let busy = 2;
    t.answer = () => (busy-- > 0 ? { kind: 'transient', status: 503, reason: 'device answered 503' } : applied);
    l.setOrders({ d1: order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 }) });
    const retrying = once(l, 'retry');
    const done = appliedUntil('d1', 4);
    l.accept(delivery('d1', 2));
    await retrying;
    expect(l.reports()).toMatchObject([{ deviceId: 'd1', state: 'retrying', seq: 2 }]);
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 2, 2, 2, 3, 4]);
  });
});

/** d1 over a device that reports its watermark (`dev.wm`, raised by `applies`), seq 2 refused (onPermanent=block) with `seqs` delivered */
async function reportingBlockedAt2(seqs: number[]) {
  const s = setup();
  const dev = { wm: 0 };
  const applies = (m: WireMessage): DeviceOutcome => ((dev.wm = Math.max(dev.wm, m.seq)), applied);
  s.t.watermark = () => dev.wm;
  s.t.answer = (m) => (m.seq === 2 ? refused : applies(m));
  const blocked = once(s.l, 'blocked');
  seqs.forEach((seq) => s.l.accept(delivery('d1', seq)));
  await blocked;
  return { ...s, dev, applies };
}

const lost: DeviceOutcome = { kind: 'transient', status: null, reason: 'no answer within 5000 ms' };
const retry1 = order({ blockedAt: 2, retry: { seq: 2, n: 1 }, releasedThrough: 1 });
const skipped2 = order({ blockedAt: 2, releasedThrough: 2 });

describe('a skip ordered while the retry is on the wire (issue 15)', () => {
  it('the attempt on the wire is applied: reported applied as the retry, and the line goes on released', async () => {
    const { t, l, sentOf, appliedUntil } = await blockedAt2();
    let answer!: (o: DeviceOutcome) => void;
    t.answer = (m) => (m.seq === 2 ? new Promise((resolve) => (answer = resolve)) : applied);
    l.setOrders({ d1: retry1 });
    const retried = delivery('d1', 2);
    l.accept(retried);
    await quiet();
    expect(sentOf('d1')).toEqual([1, 2, 2]);
    l.setOrders({ d1: skipped2 });
    const done = appliedUntil('d1', 4);
    answer(applied);
    await done;
    expect(t.applied).toEqual(['d1:1', 'd1:2 (retry 1)', 'd1:3', 'd1:4']);
    expect(sentOf('d1')).toEqual([1, 2, 2, 3, 4]);
    expect(retried.acked).toBe(true);
  });

  it('an attempt whose answer was lost, skipped during the backoff: the device says it has the seq, so it is reported applied as the retry', async () => {
    const s = await reportingBlockedAt2([1, 2, 3, 4]);
    // the retry goes through, but its answer is lost on the way back
    s.t.answer = (m) => (m.seq === 2 ? (s.applies(m), lost) : s.applies(m));
    s.l.setOrders({ d1: retry1 });
    const retrying = once(s.l, 'retry');
    s.l.accept(delivery('d1', 2));
    await retrying;
    // the skip's grant comes before the next attempt
    s.l.setOrders({ d1: skipped2 });
    await s.appliedUntil('d1', 4);
    expect(s.t.applied).toEqual(['d1:1', 'd1:2 (retry 1)', 'd1:3', 'd1:4']);
    expect(s.sentOf('d1')).toEqual([1, 2, 2, 3, 4]);
  });

  it('an attempt whose answer was lost, skipped during the backoff, that the device does not have: not sent again, not reported', async () => {
    const s = await reportingBlockedAt2([1, 2, 3, 4]);
    s.t.answer = (m) => (m.seq === 2 ? lost : s.applies(m));
    s.l.setOrders({ d1: retry1 });
    const retrying = once(s.l, 'retry');
    const retried = delivery('d1', 2);
    s.l.accept(retried);
    await retrying;
    s.l.setOrders({ d1: skipped2 });
    await s.appliedUntil('d1', 4);
    await quiet();
    expect(s.t.applied).toEqual(['d1:1', 'd1:3', 'd1:4']);
    expect(s.sentOf('d1')).toEqual([1, 2, 2, 3, 4]);
    expect(retried.acked).toBe(true);
  });

  it('a retry the device has already under a new epoch (an earlier attempt went through, its receipt lost) is reported applied as the retry, unsent', async () => {
    const s = await reportingBlockedAt2([1, 2, 3]);
    s.t.answer = s.applies;
    s.dev.wm = 2; // another agent's attempt of the retry went through
    s.t.epoch = 2;
    s.l.setOrders({ d1: retry1 });
    const done = s.appliedUntil('d1', 3);
    s.l.accept(delivery('d1', 2));
    await done;
    expect(s.t.applied).toEqual(['d1:1', 'd1:2 (retry 1)', 'd1:3']);
    expect(s.sentOf('d1')).toEqual([1, 2, 3]);
  });

  it('the skip comes before the retry went out: its copy, ahead of the next seq, is not sent (the lane dead-lettered that seq itself)', async () => {
    const { t, l, sentOf, appliedUntil } = setup();
    t.answer = (m) => (m.seq === 2 ? refused : applied);
    const blocked = once(l, 'blocked');
    [1, 2].forEach((seq) => l.accept(delivery('d1', seq)));
    await blocked;
    t.answer = () => applied; // fixed: sent again, it would be applied
    l.setOrders({ d1: retry1 });
    l.setOrders({ d1: skipped2 });
    const copy = await copySkipped(l, 2);
    const done = appliedUntil('d1', 3);
    l.accept(delivery('d1', 3));
    await done;
    expect(sentOf('d1')).toEqual([1, 2, 3]);
    expect(t.applied).toEqual(['d1:1', 'd1:3']);
    expect(copy.acked).toBe(true);
  });
});

describe('an agent that took a line over (it never saw the refusal)', () => {
  it("holds every seq above the order's blockedAt, handles those at or below it as usual, and goes on once released", async () => {
    const { l, sentOf, appliedUntil } = setup();
    l.setOrders({ d1: order({ blockedAt: 5, releasedThrough: 4 }) });
    const held = [6, 7].map((s) => delivery('d1', s));
    held.forEach((d) => l.accept(d));
    await quiet();
    expect(sentOf('d1')).toEqual([]);
    expect(l.reports()).toEqual([{ deviceId: 'd1', state: 'blocked', seq: 5, status: null, response: null, reason: expect.stringMatching(/line order holds the line there.*baton unblock d1 --retry/), since: 1000 }]);
    const below = appliedUntil('d1', 4);
    l.accept(delivery('d1', 4));
    await below;
    expect(sentOf('d1')).toEqual([4]);
    const done = appliedUntil('d1', 7);
    l.setOrders({ d1: order({ releasedThrough: 5 }) });
    await done;
    expect(sentOf('d1')).toEqual([4, 6, 7]);
  });

  it('of two deliveries of the refused seq (the old one redelivered, and the retry copy) sends exactly one', async () => {
    for (const retryFirst of [true, false]) {
      const { l, sentOf, appliedUntil } = setup();
      // its grant: the runtime counts the dead-lettered seq 5 as settled, and holds the line there
      l.setWatermark('d1', 5, 1);
      const retry = order({ blockedAt: 5, retry: { seq: 5, n: 1 }, releasedThrough: 4 });
      l.setOrders({ d1: retryFirst ? retry : order({ blockedAt: 5, releasedThrough: 4 }) });
      const ds = [5, 6, 5].map((s) => delivery('d1', s));
      const done = appliedUntil('d1', 6);
      l.accept(ds[0]!);
      l.accept(ds[1]!);
      await quiet();
      if (!retryFirst) l.setOrders({ d1: retry });
      l.accept(ds[2]!);
      await done;
      await quiet();
      expect(sentOf('d1')).toEqual([5, 6]);
      expect(ds.every((d) => d.acked)).toBe(true);
    }
  });
});

describe('line-orders: what a lane may send', () => {
  it('a retry of a seq above a lower block waits; a retry acted on is no longer one', () => {
    const refusal = { seq: 3, status: 404, response: null, reason: 'r', answer: 'a', retry: null, since: 0, recorded: true };
    const h = holdOf(order({ retry: { seq: 5, n: 1 }, releasedThrough: 2 }), refusal, null);
    expect(h.at).toEqual({ seq: 3, by: 'refusal' });
    expect(stepFor(h, 5)).toBeNull();
    // a copy of the seq the line is held at waits, settled here or not: it may be a retry whose order has not arrived
    expect(stepFor(h, 3)).toBeNull();
    expect(stepFor(h, 2)).toBe('send');
    const acted = holdOf(order({ blockedAt: 5, retry: { seq: 5, n: 1 }, releasedThrough: 4 }), null, { seq: 5, n: 1 });
    expect(acted).toEqual({ paused: false, at: null, retry: null });
  });
});
