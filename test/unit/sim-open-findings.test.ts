// Open finding (review of the planned handover, 2026-12-03), not fixed yet: wide seed 2937.
// Bug: a receipt reader whose load query was made while PostgreSQL hung waits for it until its
// deadline (databaseTimeout, 10 s) and reads no receipt meanwhile, well after PostgreSQL answers
// again. Here an operator's retry of a refused seq is applied by the device, the operator then skips
// the seq (the retry still on the wire as far as the runtime knows), and the retry's applied receipt
// is not read before the run ends: applied() answered device-rejected and the dead letter stands,
// though the device applied the seq. The seed does not involve the catch-up (the planned handover
// was refused); its trace is the same without the catch-up trouble.
//
// Open finding, wide seed 3759 (no fault but the line operator's): an operator retries a refused seq,
// then skips it while the retry is on the wire (5794 ms); the run ends 8 ms later, the device has
// applied the retry, and the dead letter still says skipped: suspected to be the simulation's end
// coming before the retry's applied receipt (which names the retry and turns the dead letter to
// retried) is taken, i.e. the wide run's settling does not wait for receipts in flight; not verified.
//
// Open finding, wide seeds 4465 and 3567 (operator on; they fail before this review's changes too):
// the broker nacks the active agent's receipts while a device refuses seq s, so the agent blocks its
// line at s and requeues the message whose dead letter it could not send; the runtime records the
// block from the agent's heartbeat (regression 281) but no dead letter of s is ever stored (the agent
// dies, or the switch moves the message to a new agent first). The new agent holds s behind the
// block, and the operator's retry is refused (`unknown-dead-letter`): the line stays blocked for
// good and every seq from s on is stranded (neither applied nor dead-lettered).
import { describe, expect, it } from 'vitest';
import { simulate } from '../../src/tools/sim/simulation.ts';

describe('open simulation findings', () => {
  it.fails('seed 2937: a receipt reader held by a hung load query reads no receipt long after PostgreSQL answers again', async () => {
    const r = await simulate({ seed: 2937, model: 'wide', operator: true });
    expect(r.violations).toEqual([]);
  });

  it.fails.each([4465, 3567])('seed %i: a line blocked from a heartbeat whose dead letter was never stored cannot be retried: its seqs are stranded', async (seed) => {
    const r = await simulate({ seed, model: 'wide', operator: true });
    expect(r.violations).toEqual([]);
  });

  it.fails('seed 3759: a skip while the retry is on the wire, the run ending before its applied receipt is taken (suspected)', async () => {
    const r = await simulate({ seed: 3759, model: 'wide', operator: true });
    expect(r.violations).toEqual([]);
  });
});
