// Review (issue 15): a dead letter's message must reach the device once. Resending a dead letter
// dispatches its message again under a new seq at the end of the line; retrying the blocked seq
// sends the same message again under its old seq. Both on one dead letter apply it twice (the
// second after the newer changes kept behind the block): whichever comes second is refused.
import { describe, expect, it } from 'vitest';
import { blockedAtTwo } from '../support/line-harness.ts';

const outcome = (p: Promise<unknown>) => p.then(() => 'ok', (e: Error & { code?: string }) => `${e.code}: ${e.message}`);

/** fw1's seqs 1..3 delivered, seq 2 refused with the line blocked there (dead letter 1), seqs 4 and 5 kept behind it */
async function blocked() {
  const c = await blockedAtTwo();
  await c.dispatch(c.r1, 'fw1', 2);
  await c.run(100);
  const [dl] = await c.r1.deadLetters({ deviceId: 'fw1' });
  return { ...c, dl: dl! };
}

describe('review: a dead letter resent and its seq retried', () => {
  it('a retry of a blocked seq whose dead letter was resent already is refused (the resent copy waits behind the block)', async () => {
    const c = await blocked();
    const resent = await c.r1.resendDeadLetter(c.dl.id, { by: 'cli:alice' });
    expect(resent).toMatchObject({ outcome: 'done', seq: 6 });
    const retry = await outcome(c.r1.unblock('fw1', { action: 'retry', by: 'cli:bob' }));
    expect(retry).toMatch(/^dead-letter-settled: .*resent by cli:alice as seq 6/);
    await c.run(200);
    // seq 2 is not sent again; the resent copy (seq 6) goes once the block is skipped
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3]);
    expect(await c.r1.unblock('fw1', { action: 'skip' })).toMatchObject({ outcome: 'done' });
    await c.run(200);
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it('a resend of a dead letter whose seq is being retried is refused', async () => {
    const c = await blocked();
    expect(await c.r1.unblock('fw1', { action: 'retry', by: 'cli:bob' })).toMatchObject({ outcome: 'done' });
    const resend = await outcome(c.r1.resendDeadLetter(c.dl.id, { by: 'cli:alice' }));
    expect(resend).toMatch(/^dead-letter-settled: .*being retried/);
    await c.run(200);
    // seq 2 once again (the retry), no new seq carrying it too; the dead letter stays open
    expect(c.seqsOf('fw1')).toEqual([1, 2, 3, 2, 4, 5]);
    expect((await c.r1.deadLetter(c.dl.id))!.resolution).toBeNull();
  });

  it('a drop of a dead letter whose seq is being retried is refused (the retry may apply it)', async () => {
    const c = await blocked();
    expect(await c.r1.unblock('fw1', { action: 'retry', by: 'cli:bob' })).toMatchObject({ outcome: 'done' });
    expect(await outcome(c.r1.dropDeadLetter(c.dl.id, { reason: 'not wanted' }))).toMatch(/^dead-letter-settled: .*being retried/);
    await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 2, to: 2 }] });
    expect((await c.r1.deadLetter(c.dl.id))!.resolution).toMatchObject({ kind: 'retried', by: 'cli:bob' });
  });

  it('a resend that claims the dead letter while the retry is being ordered (after its dead letter was read): the retry is not published', async () => {
    const c = await blocked();
    const find = c.store.findDeadLetter.bind(c.store);
    let first = true;
    // the resend's claim lands right after unblock read the dead letter (still open)
    c.store.findDeadLetter = async (deviceId, seq) => {
      const dl = await find(deviceId, seq);
      if (first && dl) {
        first = false;
        await c.store.resolveDeadLetter(dl.id, { kind: 'resent', by: 'cli:alice', at: 0, detail: 'being resent' });
      }
      return dl;
    };
    expect(await c.r1.unblock('fw1', { action: 'retry', by: 'cli:bob' })).toMatchObject({ outcome: 'done' });
    await c.run(200);
    // seq 2 is not published again (the rows kept behind it go: the agent holds them above the retry's seq)
    expect(c.seqsOf('fw1').filter((s) => s === 2)).toHaveLength(1);
  });
});
