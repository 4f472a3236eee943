// Benchmark harness: measures baton and its baseline alternately in the same run, several runs,
// and reports medians, min-max and the ratio baton/baseline against a target.

export interface Measured {
  median: number;
  min: number;
  max: number;
  runs: number[];
  unit: string;
}

export interface BenchResult {
  name: string;
  baseline: Measured & { label: string };
  baton: Measured;
  ratio: number;
  target: string;
  met: boolean;
  notes: string[];
}

export interface BenchContext {
  /** tiny: a smoke run that only proves the benchmark works */
  size: 'tiny' | 'full';
  runs: number;
  amqpUrl: string;
  databaseUrl: string;
  /** RabbitMQ management API: baton fences through it and the shovel moves through it */
  managementUrl: string;
  log(line: string): void;
}

export interface Benchmark {
  name: string;
  describe: string;
  run(ctx: BenchContext): Promise<BenchResult>;
}

export function measured(runs: number[], unit: string): Measured {
  const sorted = [...runs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median: Math.round(median * 100) / 100, min: sorted[0]!, max: sorted.at(-1)!, runs, unit };
}

/** Runs `baseline` and `baton` alternately `runs` times each; returns both series. */
export async function alternate(runs: number, baseline: () => Promise<number>, baton: () => Promise<number>): Promise<{ base: number[]; ours: number[] }> {
  const base: number[] = [];
  const ours: number[] = [];
  for (let i = 0; i < runs; i++) {
    if (i % 2 === 0) {
      base.push(await baseline());
      ours.push(await baton());
    } else {
      ours.push(await baton());
      base.push(await baseline());
    }
  }
  return { base, ours };
}

export function table(results: BenchResult[]): string {
  const rows = results.map((r) => [
    r.name,
    `${r.baseline.label}: ${r.baseline.median} ${r.baseline.unit} (${r.baseline.min}–${r.baseline.max})`,
    `${r.baton.median} ${r.baton.unit} (${r.baton.min}–${r.baton.max})`,
    `${r.ratio.toFixed(2)}×`,
    r.target,
    r.met ? 'met' : 'MISSED',
  ]);
  const head = ['benchmark', 'baseline (median, min–max)', 'baton (median, min–max)', 'baton/baseline', 'target', ''];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
