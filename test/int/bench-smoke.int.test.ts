// Every benchmark runs at a tiny size, so they cannot rot (the figures come from `npm run bench`).
import { describe, expect, it } from 'vitest';
import { benchmarks } from '../../scripts/bench/benchmarks.ts';
import { table } from '../../scripts/bench/harness.ts';
import { AMQP_URL, DATABASE_URL } from '../support/services.ts';
import { management, MANAGEMENT_URL, requireItem } from '../support/preflight.ts';

describe('benchmarks (smoke)', () => {
  it.each(benchmarks.map((b) => b.name))('%s runs and reports both sides', async (name) => {
    await requireItem(management);
    const b = benchmarks.find((x) => x.name === name)!;
    const r = await b.run({ size: 'tiny', runs: 1, amqpUrl: AMQP_URL, databaseUrl: DATABASE_URL, managementUrl: MANAGEMENT_URL, log: () => {} });
    expect(r.name).toBe(name);
    expect(r.baseline.median).toBeGreaterThan(0);
    expect(r.baton.median).toBeGreaterThan(0);
    expect(r.ratio).toBeCloseTo(r.baton.median / r.baseline.median, 5);
    expect(typeof r.met).toBe('boolean');
    expect(table([r])).toContain(name);
  }, 900_000); // a backstop only: each benchmark bounds its own waits (failover: 2 × (60 + 20 + 3) s at worst)
});
