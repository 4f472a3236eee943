// The wide simulation model (`baton sim --model wide`): determinism, no false alarm on a healthy
// deployment, and the holes of issue 12 it finds on its own.
import { describe, expect, it } from 'vitest';
import { simulate, type SimOptions } from '../../src/tools/sim/simulation.ts';

describe('wide simulation model', () => {
  it('replays a seed exactly (deployment, faults, trace, violations)', async () => {
    for (const seed of [17, 80]) {
      const a = await simulate({ seed, model: 'wide' });
      const b = await simulate({ seed, model: 'wide' });
      expect(b).toEqual(a);
      expect(a.trace.length).toBeGreaterThan(3);
    }
  });

  it('finds nothing wrong in a deployment of one runtime without faults', async () => {
    for (let seed = 1; seed <= 3; seed++) {
      const r = await simulate({ seed, model: 'wide', runtimes: 1, faults: false });
      expect(r.violations, r.trace.join('\n')).toEqual([]);
      expect(r.stats.accepted).toBe(120);
    }
  });

  it('finds a planted bug (a parked row dropped during replay) that the same run without it does not have', async () => {
    const run: SimOptions = { seed: 1, model: 'wide', runtimes: 1, agents: 2, inFlight: 1, faults: [{ at: 0.1, kind: 'stop-agent', size: 0.4 }] };
    expect((await simulate(run)).violations).toEqual([]);
    const r = await simulate({ ...run, plant: 'drop-parked-row' });
    expect(r.violations.join('\n')).toMatch(/1 accepted message\(s\) neither applied nor dead-lettered \(lost\)/);
  });
});

/**
 * Each case reproduces one hole of issue 12 on the code before its fix (found by the wide model;
 * the seeds with drawn faults came from `baton sim --model wide --keep-going`). Once the fix of a
 * hole is merged, put its number in FIXED: the case must then hold every invariant.
 */
const FIXED = new Set<string>(['1', '2', '3', '4', '5', '6', '7', '9', '10', 'accounting']);
const holes: Array<{ hole: string; what: string; run: SimOptions; finds: RegExp }> = [
  {
    hole: '1',
    what: 'a leader that lost and regained leadership reuses its cached seq block',
    run: { seed: 1, model: 'wide', runtimes: 2, agents: 2, inFlight: 1, leaderTtl: 1500, faults: [{ at: 0.1, kind: 'leader-flap', size: 0.8 }, { at: 0.6, kind: 'pause-runtime', size: 1, target: 0 }] },
    finds: /got a seq below one returned to an earlier dispatch\(\) call/,
  },
  {
    hole: '2',
    what: 'two leaders at once (renewal hangs without a deadline)',
    run: { seed: 3, model: 'wide', runtimes: 2, agents: 2, inFlight: 1, leaderTtl: 1500, faults: [{ at: 0.2, kind: 'db-hang', size: 0.8, target: 0 }] },
    finds: /2 runtimes say they lead/,
  },
  {
    hole: '3',
    what: 'one failed renewal while the dispatcher settles (broker connection down): the resume is dropped, it parks forever',
    // drawn seed 355 (renewals fail 2.5 s while the broker connection is down; the leader loses and wins back)
    run: { seed: 355, model: 'wide' },
    finds: /the leader's dispatcher is in "parking"/,
  },
  {
    hole: '4',
    what: 'an agent paused with a request out gives its queue back but keeps that delivery, unacked, forever',
    // drawn seed 2328 (a slow device, the active agent stopped 4.2 s with a request out)
    run: { seed: 2328, model: 'wide' },
    finds: /queue sim\.agent\.a1 \(not active\) holds 0 ready, [1-9]\d* unacked/,
  },
  {
    hole: '5',
    what: 'the leader and the active agent die together: the standby never switches within the bound',
    run: { seed: 9, model: 'wide' },
    finds: /the recorded active agent a1 is dead/,
  },
  {
    hole: '6',
    what: 'one agent, a short hang: awaitingCandidate forever',
    run: { seed: 1, model: 'wide', runtimes: 1, agents: 1, inFlight: 1, faults: [{ at: 0.3, kind: 'stop-agent', size: 0.25 }] },
    finds: /awaitingCandidate/,
  },
  {
    hole: '7',
    what: 'receipts split between runtimes: applied() of an applied seq times out on the leader',
    run: { seed: 1, model: 'wide', runtimes: 3, agents: 1, inFlight: 2, faults: false },
    finds: /applied, but applied\(\) ended timeout/,
  },
  {
    hole: '9',
    what: 'an ambiguous park is reported as not stored: the host sends it again and both are applied',
    run: { seed: 80, model: 'wide' },
    finds: /applied although dispatch\(\) refused them/,
  },
  {
    hole: '10',
    what: '(likely) a new leader grants the new agent a lease while the old leader\'s lease to the old agent still runs: a stale write',
    run: { seed: 839, model: 'wide' },
    finds: /fw2: 2 write\(s\) accepted from a stale epoch/,
  },
  {
    hole: 'accounting',
    what: 'applied() resolves a dead-lettered seq because a higher one was applied',
    run: { seed: 1, model: 'wide', runtimes: 1, agents: 2, inFlight: 1, faults: [{ at: 0.3, kind: 'device-rejects', size: 1, target: 0 }] },
    finds: /dead-lettered, but applied\(\) resolved/,
  },
];

describe('wide simulation model: a slice of seeds (`npm run sim` runs 2,000, `npm run sim:nightly` 50,000)', () => {
  it('holds every invariant over seeds 1-200', async () => {
    const failed: string[] = [];
    let switches = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const r = await simulate({ seed, model: 'wide' });
      switches += r.stats.switches;
      if (!r.ok) failed.push(`seed ${seed}: ${r.violations.join('; ')}\n${r.trace.join('\n')}`);
    }
    expect(failed).toEqual([]);
    expect(switches).toBeGreaterThan(50); // the seeds really exercised failover
  }, 120_000);
});

describe('wide simulation model: the holes of issue 12', () => {
  it.each(holes.map((h) => [h.hole, h.what, h]))('hole %s (%s)', async (hole, _what, h) => {
    const r = await simulate(h.run);
    if (FIXED.has(hole)) expect(r.violations, r.trace.join('\n')).toEqual([]);
    else expect(r.violations.join('\n'), r.trace.join('\n')).toMatch(h.finds);
  });
});
