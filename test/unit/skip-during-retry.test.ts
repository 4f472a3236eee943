// Review (issue 15), KNOWN, NOT FIXED: a skip ordered while a retry of the blocked seq is on the
// wire. The agent re-reads its orders before each attempt, so after the skip's grant it sends
// nothing more; but an attempt already sent may be applied. Its applied receipt then finds no retry
// pending (the skip cleared it) and is ignored: the dead letter stays `skipped` and applied() of the
// seq answers device-rejected, though the device applied it. `it.fails` until fixed.
import { describe, expect, it } from 'vitest';
import { leadingRig } from '../support/line-harness.ts';

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

describe('review: skip while a retry is on the wire', () => {
  it.fails('KNOWN BUG: the retry applied after the skip is counted applied and its dead letter says so', async () => {
    const c = await leadingRig();
    await c.dispatch(c.r1, 'fw1', 3);
    const refused = c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 2)!;
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }, { deviceId: 'fw1', from: 3, to: 3 }] });
    await c.refuse(refused);
    await c.run(100);
    expect(await c.r1.unblock('fw1', { action: 'retry' })).toMatchObject({ outcome: 'done' });
    await c.run(100);
    expect(await c.r1.unblock('fw1', { action: 'skip' })).toMatchObject({ outcome: 'done' });
    // the retry sent before the skip reached the agent was applied
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2 }] });
    expect((await c.store.findDeadLetter('fw1', 2))!.resolution?.kind).toBe('retried');
    expect(await outcome(c.r1.applied({ deviceId: 'fw1', seq: 2 }))).toBe('ok');
  });
});
