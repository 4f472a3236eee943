// Review (issue 15), fixed: a skip ordered while a retry of the blocked seq is on the wire. The agent
// re-reads its orders before each attempt, so after the skip's grant it sends nothing more; but an
// attempt already sent may be applied. Its applied receipt names the retry it answers (`retry: n`),
// so the runtime counts the seq applied and resolves its dead letter `retried`, though the line was
// released by the skip; the skip's answer says the retry may still be applied. A bare applied range
// of that seq (an agent skipping it as "applied before its epoch", which it cannot tell) changes
// nothing: the dead letter stays skipped, and so it does when the retry is refused again. A skip
// racing with the retry's receipt never writes `skipped` over `retried`. (Why the skip is not refused
// instead: line-receipts.ts.)
import { describe, expect, it } from 'vitest';
import { blockedAtTwo, leadingRig } from '../support/line-harness.ts';

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

/** fw1's seq 2 refused (the line blocked there) and retried (its retry n): the retry is on its way, or on the wire */
async function retrying() {
  const c = await blockedAtTwo();
  await c.run(100);
  const retried = await c.r1.unblock('fw1', { action: 'retry', by: 'cli:bob' });
  expect(retried).toMatchObject({ outcome: 'done' });
  const n = Number(/retry (\d+)/.exec(retried.detail)![1]);
  await c.run(100);
  // the retry was published again: it is on its way to the agent, or on the wire
  expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2]);
  return { ...c, n };
}

/** the same, then skipped while the retry may be on the wire */
async function skippedMidRetry() {
  const c = await retrying();
  const skipped = await c.r1.unblock('fw1', { action: 'skip', by: 'cli:alice' });
  return { ...c, skipped };
}

describe('review: skip while a retry is on the wire', () => {
  it('a retry applied later (its receipt) settles the dead letter: the event says so and the dead-letter alarm clears', async () => {
    const c = await retrying();
    const seen: string[] = [];
    c.r1.on('dead-letter.resolved', (e) => seen.push(`resolved ${e.deviceId} ${e.seq} ${e.kind}`));
    c.r1.on('alarm.cleared', (e) => seen.push(`cleared ${e.alarm.id}`));
    expect(c.r1.alarms().map((a) => a.id)).toContain('dead-letter:fw1');
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2, retry: c.n }] });
    await c.run(100);
    expect(seen).toEqual(expect.arrayContaining(['resolved fw1 2 retried', 'cleared dead-letter:fw1']));
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution?.kind).toBe('retried');
  });

  it('the skip goes through and says that the retry on the wire may still be applied', async () => {
    const c = await skippedMidRetry();
    expect(c.skipped).toMatchObject({ outcome: 'done', detail: expect.stringMatching(new RegExp(`its retry ${c.n} may be on the wire already: if the device applies that, seq 2 counts applied`)) });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'skipped', by: 'cli:alice' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
  });

  it('the retry applied after the skip is counted applied and its dead letter says so', async () => {
    const c = await skippedMidRetry();
    // the retry sent before the skip reached the agent was applied: its receipt names the retry
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2, retry: c.n }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'retried', by: 'agent:a1', detail: expect.stringMatching(new RegExp(`retry ${c.n}\\): the retry was on the wire when seq 2 was skipped by cli:alice`)) });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
    // the line stays released: the next messages go
    await c.dispatch(c.r1, 'fw1', 1);
    await c.run(100);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4]);
    // the receipt taken again (it went back to the queue) changes nothing
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2, retry: c.n }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'retried', by: 'agent:a1' });
    // a second skip is a repeat of nothing: the seq was retried and applied
    expect(await outcome(c.r1.unblock('fw1', { action: 'skip' }))).toMatch(/^not-blocked: device fw1 is not blocked: its line flows/);
  });

  it('the retry applied while the skip is being ordered (after the skip read the dead letter): the skip does not write `skipped` over it', async () => {
    const c = await retrying();
    const find = c.store.findDeadLetter.bind(c.store);
    let letGo!: () => void;
    const held = new Promise<void>((resolve) => (letGo = resolve));
    let first = true;
    // the skip reads the dead letter (open), then waits while the retry's applied receipt is taken
    c.store.findDeadLetter = async (deviceId, seq) => {
      const dl = await find(deviceId, seq);
      if (first) (first = false), await held;
      return dl;
    };
    const skip = c.r1.unblock('fw1', { action: 'skip', by: 'cli:alice' });
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2, retry: c.n }] });
    letGo();
    expect(await c.drive(skip)).toMatchObject({ outcome: 'already', detail: expect.stringMatching(/released already/) });
    expect((await find('fw1', 2))!.resolution).toMatchObject({ kind: 'retried', by: 'cli:bob' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
  });

  it('the retry refused again after the skip: its dead letter stays skipped (not opened again) and the line goes on', async () => {
    const c = await skippedMidRetry();
    const refused = c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 2)!;
    await c.refuse(refused, { retry: c.n });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'skipped', by: 'cli:alice' });
    expect(await c.r1.deadLetters({ deviceId: 'fw1', open: true })).toEqual([]);
    await c.dispatch(c.r1, 'fw1', 1);
    await c.run(100);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4]);
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
  });

  it('a bare applied range of the skipped seq (no retry named: "applied before its epoch") leaves it skipped', async () => {
    const c = await skippedMidRetry();
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2 }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toMatchObject({ kind: 'skipped', by: 'cli:alice' });
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
  });

  it('a receipt naming a retry of a seq whose line is still blocked (not retried, not released) changes nothing', async () => {
    const c = await leadingRig();
    await c.dispatch(c.r1, 'fw1', 2);
    const refused = c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 2)!;
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }] });
    await c.refuse(refused);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2, retry: 7 }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution).toBeNull();
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toMatch(/^device-rejected/);
  });
});
