/** `baton sim`: the deterministic simulation over many seeds, or one seed replayed with its trace. */
import { BatonError } from '../../errors.ts';
import { simulate } from '../sim/simulation.ts';
import { num, out, type Command, type CommandValues } from './command.ts';

type Model = 'narrow' | 'wide';
type Plant = 'drop-parked-row';
type SimResult = Awaited<ReturnType<typeof simulate>>;

/** A violation with device names and numbers taken out: failures are counted by it. */
const kindOf = (violation: string) => violation.replace(/\bfw\d+: /, '').replace(/\b(r|a)\d+\b/g, '$1N').replace(/\d+/g, 'N').replace(/: seq .*$/, '');

function options(v: CommandValues) {
  const plant = v.plant as string | undefined;
  if (plant !== undefined && plant !== 'drop-parked-row') throw new BatonError('invalid-config', `--plant must be drop-parked-row (got ${JSON.stringify(plant)})`);
  const model = (v.model as string | undefined) ?? 'wide';
  if (model !== 'narrow' && model !== 'wide') throw new BatonError('invalid-config', `--model must be narrow or wide (got ${JSON.stringify(model)})`);
  const first = num(v.seed, 'seed') ?? 1;
  const count = num(v.seeds, 'seeds') ?? (v.seed !== undefined ? 1 : 200);
  const messages = num(v.messages, 'messages');
  return { plant: plant as Plant | undefined, model: model as Model, first, count, messages, one: v.seed !== undefined && v.seeds === undefined };
}

/** What one seed prints when replayed alone, asked to be verbose, or failed: its figures, violations, trace, how to replay and keep it. */
function printSeed(seed: number, r: SimResult, o: { one: boolean; model: Model; plant: Plant | undefined }): void {
  const p = r.stats.planned;
  const planned = p && (p.asked || p.released || p.fallbacks) ? `, ${p.asked} planned handover(s): ${p.released} lease(s) given back, ${p.fallbacks} fell back to fencing` : '';
  out(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} (${r.stats.accepted} accepted, ${r.stats.applied} applied, ${r.stats.switches} switches${planned}, ${r.stats.simulatedMs} ms simulated)`);
  for (const x of r.violations) out(`  violation: ${x}`);
  if (!r.ok || o.one) for (const line of r.trace) out(`  ${line}`);
  if (!r.ok) out(`  replay: npx baton sim --seed ${seed}${o.model === 'narrow' ? ' --model narrow' : ''}${o.plant ? ` --plant ${o.plant}` : ''}`);
  if (!r.ok && !o.plant) out(`  keep it: add { "seed": ${seed},${o.model === 'wide' ? ' "model": "wide", "operator": true,' : ''} "found": "<date>", "bug": "<what it found>" } to scripts/sim-regressions.json (npm test replays every seed there)`);
}

export const sim: Command = {
  summary: 'deterministic simulation: the real runtime and agents over in-memory services, seeded faults, invariants checked',
  usage:
    'baton sim [--seeds N] [--seed S] [--model narrow|wide] [--messages N] [--plant drop-parked-row] [--verbose] [--keep-going]\n' +
    '  --seeds N runs seeds 1..N (from --seed S when given); --seed S alone replays one seed with its trace\n' +
    '  --model wide (the default): two or three runtimes, one to three agents, PostgreSQL and broker faults, pauses, flaps, slow devices; liveness checked after healing\n' +
    '  --model narrow: the first model (one runtime, two agents; kills, stops, crashes, device errors)\n' +
    '  --keep-going: run every seed and count failures by kind of violation (with the first seeds of each)',
  options: { seeds: { type: 'string' }, seed: { type: 'string' }, model: { type: 'string' }, messages: { type: 'string' }, plant: { type: 'string' }, verbose: { type: 'boolean' }, 'keep-going': { type: 'boolean' } },
  async run(v) {
    const o = options(v);
    const { plant, model, first, count, messages, one } = o;
    const keepGoing = v['keep-going'] === true;
    const kinds = new Map<string, number[]>();
    const started = performance.now();
    let failed = 0;
    for (let seed = first; seed < first + count; seed++) {
      const r = await simulate({ seed, model, ...(messages ? { messages } : {}), ...(plant ? { plant } : {}) });
      if (keepGoing && !one) {
        // one line per failed seed; the kinds are the violations with device names and numbers taken out
        if (!r.ok) {
          failed++;
          out(`seed ${seed}: ${r.violations.join('; ')}`);
          for (const k of new Set(r.violations.map(kindOf))) kinds.set(k, [...(kinds.get(k) ?? []), seed]);
        }
        if (process.stderr.isTTY) process.stderr.write(`\r  ${seed - first + 1}/${count} seeds`);
        continue;
      }
      if (one || v.verbose || !r.ok) printSeed(seed, r, o);
      if (!r.ok && ++failed >= 1 && !v.verbose) break;
      if (process.stderr.isTTY && !one) process.stderr.write(`\r  ${seed - first + 1}/${count} seeds`);
    }
    const secs = (performance.now() - started) / 1000;
    if (process.stderr.isTTY && !one) process.stderr.write('\n');
    if (keepGoing) {
      for (const [k, seeds] of [...kinds].sort((a, b) => b[1].length - a[1].length)) out(`${String(seeds.length).padStart(6)} seed(s): ${k}  (e.g. ${seeds.slice(0, 5).join(', ')})`);
      out(`${failed} of ${count} seed(s) broke an invariant (${model} model) in ${secs.toFixed(1)} s`);
      return failed === 0 ? 0 : 1;
    }
    out(`${failed === 0 ? 'all seeds held every invariant' : `a seed broke an invariant`}: ${count} seed(s) in ${secs.toFixed(1)} s`);
    return failed === 0 ? 0 : 1;
  },
};
