/**
 * `baton bench`: the benchmarks, as a command the bin (`scripts/baton.mjs`) adds to the CLI's own
 * (`src/` never imports `scripts/`). The benchmarks load only when the command runs.
 */
import { localManagementUrl, runtimeDefaults } from '../../src/config.ts';
import { BatonError } from '../../src/errors.ts';
import { num, out, type Command } from '../../src/tools/cli/command.ts';
import { env } from '../../src/tools/cli/environment.ts';

export const bench: Command = {
  summary: 'benchmarks: baton side by side with the plain pipeline and its alternatives, in one run',
  usage: 'baton bench [NAME] [--json] [--runs N] [--tiny]\n  names: throughput-one-device, throughput-devices, failover-kill, failover-hang, handover-planned, move-depth, parking, latency, memory, serve-throughput\n  env: BATON_AMQP_URL, BATON_DATABASE_URL (throw-away databases are made next to it), BATON_MANAGEMENT_URL',
  options: { json: { type: 'boolean' }, runs: { type: 'string' }, tiny: { type: 'boolean' } },
  positionals: true,
  listedAfter: 'sim',
  async run(v, positionals = []) {
    const { benchmarks } = await import('./benchmarks.ts');
    const { table } = await import('./harness.ts');
    const chosen = positionals.length ? benchmarks.filter((b) => positionals.includes(b.name)) : benchmarks;
    if (chosen.length === 0) throw new BatonError('invalid-config', `no benchmark named ${positionals.join(', ')} (known: ${benchmarks.map((b) => b.name).join(', ')})`);
    const ctx = {
      size: v.tiny ? ('tiny' as const) : ('full' as const),
      runs: num(v.runs, 'runs') ?? (v.tiny ? 1 : 3),
      amqpUrl: env.amqpUrl ?? runtimeDefaults.amqpUrl,
      databaseUrl: env.databaseUrl ?? runtimeDefaults.databaseUrl,
      managementUrl: env.managementUrl ?? localManagementUrl,
      log: (l: string) => process.stderr.write(l + '\n'),
    };
    const results = [];
    for (const b of chosen) {
      if (!v.json) process.stderr.write(`running ${b.name}: ${b.describe}\n`);
      const r = await b.run(ctx);
      results.push(r);
      if (v.json) out(JSON.stringify({ name: r.name, baseline: r.baseline, baton: r.baton, ratio: r.ratio, target: r.target, met: r.met, notes: r.notes }));
      else if (chosen.length > 1) process.stderr.write(`${table([r])}\n${r.notes.map((n) => `  ${n}\n`).join('')}\n`); // as it finishes: a long run loses nothing
    }
    if (!v.json) {
      out(table(results));
      for (const r of results) for (const n of r.notes) out(`  ${r.name}: ${n}`);
    }
  },
};
