// Helpers shared by the benchmarks: sizes, messages, bounded waits, device counts, results.
import { randomBytes } from 'node:crypto';
import type { DeviceSimulator } from '../../src/device-simulator.ts';
import { measured, type BenchContext, type BenchResult } from './harness.ts';

export const sizeOf = (ctx: BenchContext, tiny: number, full: number) => (ctx.size === 'tiny' ? tiny : full);
export const tag = () => randomBytes(3).toString('hex');
export const msg = (deviceId: string, i: number) => ({ deviceId, method: 'PUT' as const, path: `/policies/p${i}`, body: { i } });

/** Rejects after `ms`: a benchmark never hangs. */
export const bounded = (ms: number, what: string) => new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms).unref());

/** Resolves once the simulators together applied `n` writes. */
export function appliedTotal(sims: DeviceSimulator[], n: number): Promise<void> {
  const count = () => sims.reduce((t, s) => t + s.applied.length, 0);
  if (count() >= n) return Promise.resolve();
  return new Promise((resolve) => {
    const on = () => {
      if (count() < n) return;
      for (const s of sims) s.events.off('applied', on);
      resolve();
    };
    for (const s of sims) s.events.on('applied', on);
  });
}

export function result(name: string, label: string, base: number[], ours: number[], unit: string, target: string, met: (b: number, o: number) => boolean, notes: string[] = []): BenchResult {
  const baseline = { ...measured(base, unit), label };
  const baton = measured(ours, unit);
  const ratio = baseline.median === 0 ? 0 : baton.median / baseline.median;
  return { name, baseline, baton, ratio, target, met: met(baseline.median, baton.median), notes };
}

