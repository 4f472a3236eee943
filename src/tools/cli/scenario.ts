/** `baton scenario run NAME|FILE` and `baton scenario list`: scripted failure scenarios against the real services. */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatonError } from '../../errors.ts';
import { cliLogger } from '../../logger.ts';
import { htmlReport, summary } from '../scenario/report.ts';
import { runScenario } from '../scenario/runner.ts';
import { loadScenario } from '../scenario/schema.ts';
import { num, out, type Command, type CommandValues } from './command.ts';
import { env, services } from './environment.ts';

const scenarioDir = fileURLToPath(new URL('../../../scripts/scenarios/', import.meta.url));
/** A bundled scenario by name, else the file named. */
const scenarioFile = (nameOrFile: string) => {
  const bundled = join(scenarioDir, `${nameOrFile}.json`);
  return !nameOrFile.includes('/') && !nameOrFile.endsWith('.json') && existsSync(bundled) ? bundled : nameOrFile;
};

function listBundled(): void {
  for (const f of readdirSync(scenarioDir).filter((x) => x.endsWith('.json')).sort()) {
    const sc = loadScenario(join(scenarioDir, f));
    out(`${sc.name.padEnd(26)} ${sc.description}`);
  }
}

async function runOne(v: CommandValues, target: string): Promise<number> {
  const sc = loadScenario(scenarioFile(target));
  const abort = new AbortController();
  process.once('SIGINT', () => {
    process.stderr.write('\nstopping: removing the processes, queues and database this run made\n');
    abort.abort();
  });
  const tty = process.stderr.isTTY && !v.json;
  if (!v.json) out(`scenario ${sc.name}: ${sc.description}`);
  const report = await runScenario(sc, {
    ...services,
    logger: cliLogger(env.logLevel ?? 'error', 'scenario'),
    signal: abort.signal,
    ...(v.inspect !== undefined ? { inspectPort: num(v.inspect, 'inspect')!, onInspector: (url: string) => (v.json ? process.stderr.write(`inspector ${url}\n`) : out(`inspector ${url}`)) } : {}),
    ...(tty ? { onProgress: (p: number) => process.stderr.write(`\r  load [${'#'.repeat(Math.round(p * 30)).padEnd(30)}] ${Math.round(p * 100)}%`) } : {}),
    ...(!v.json ? { onTimeline: (e: { t: number; text: string }) => out(`${tty ? '\r' : ''}  ${(e.t / 1000).toFixed(2).padStart(7)}s  ${e.text}`.padEnd(tty ? 60 : 0)) } : {}),
  });
  if (v.report) writeFileSync(v.report as string, htmlReport(report));
  if (v.json) out(JSON.stringify({ ok: report.ok, name: report.name, checks: report.checks, figures: report.figures }));
  else {
    out('');
    out(summary(report));
    if (v.report) out(`\nreport: ${v.report}`);
  }
  return report.ok ? 0 : 1;
}

export const scenario: Command = {
  summary: 'run a scripted failure scenario (bundled NAME or FILE), or list the bundled ones',
  usage: 'baton scenario run NAME|FILE [--json] [--report FILE.html] [--inspect [PORT]]\n       baton scenario list\n  env: BATON_AMQP_URL, BATON_DATABASE_URL, BATON_MANAGEMENT_URL',
  options: { json: { type: 'boolean' }, report: { type: 'string' }, inspect: { type: 'string' } },
  positionals: true,
  async run(v, positionals = []) {
    const [sub, target] = positionals;
    if (sub === 'list') return listBundled();
    if (sub !== 'run' || !target) throw new BatonError('invalid-config', 'usage: baton scenario run NAME|FILE [--json] [--report FILE.html], or baton scenario list');
    return runOne(v, target);
  },
};
