/** The `baton` command line: device, agent, demo, status. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { startAgent } from '../agent/worker.ts';
import { fromEnv, isId, loadDevicesFile, localManagementUrl, resolveRuntimeConfig, runtimeDefaults } from '../config.ts';
import { runDemo } from './demo.ts';
import { startDeviceSimulator } from '../devices/simulator.ts';
import { BatonError, isBatonError } from '../errors.ts';
import { cliLogger } from '../logger.ts';
import { machines, toDot, toGraph, toMermaid } from '../inspector/machine-export.ts';
import { printable } from '../printable.ts';
import { readStatus, statusJson, statusText } from './status.ts';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { htmlReport, summary } from './scenario/report.ts';
import { runScenario } from './scenario/runner.ts';
import { runtimeProcess } from './scenario/runtime-process.ts';
import { loadScenario } from './scenario/schema.ts';
import { simulate } from './sim/simulation.ts';
import { agentCredential, newSecret } from '../trust.ts';

const scenarioDir = fileURLToPath(new URL('../../scripts/scenarios/', import.meta.url));
const scenarioFile = (nameOrFile: string) => {
  const bundled = join(scenarioDir, `${nameOrFile}.json`);
  return !nameOrFile.includes('/') && !nameOrFile.endsWith('.json') && existsSync(bundled) ? bundled : nameOrFile;
};

const env = fromEnv();
/** The service URLs given in the environment (the rest take their defaults). */
const services = {
  ...(env.amqpUrl ? { amqpUrl: env.amqpUrl } : {}),
  ...(env.databaseUrl ? { databaseUrl: env.databaseUrl } : {}),
  ...(env.managementUrl ? { managementUrl: env.managementUrl } : {}),
};
const out = (line: string) => process.stdout.write(line + '\n');

interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** takes positional arguments (sub-commands, files) */
  positionals?: boolean;
  run(values: Record<string, string | boolean | undefined>, positionals?: string[]): Promise<number | void>;
}

const num = (v: unknown, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BatonError('invalid-config', `--${flag} must be a number (got ${JSON.stringify(v)})`);
  return n;
};

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
const untilSignal = () =>
  new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });

const commands: Record<string, Command> = {
  device: {
    summary: 'run a simulated network device (HTTP config API)',
    usage: 'baton device [--port P] [--host H] [--latency MS] [--error-rate R] [--error-status S]',
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      latency: { type: 'string' },
      'error-rate': { type: 'string' },
      'error-status': { type: 'string' },
    },
    async run(v) {
      const faults = {
        ...(v.latency !== undefined ? { latencyMs: num(v.latency, 'latency')! } : {}),
        ...(v['error-rate'] !== undefined ? { errorRate: num(v['error-rate'], 'error-rate')! } : {}),
        ...(v['error-status'] !== undefined ? { errorStatus: num(v['error-status'], 'error-status')! } : {}),
      };
      const sim = await startDeviceSimulator({ port: num(v.port, 'port') ?? 8181, host: (v.host as string) ?? '127.0.0.1', faults });
      out(`device simulator listening on ${sim.url}`);
      out(`  config writes: PUT/POST/PATCH/DELETE ${sim.url}/policies/p1, ${sim.url}/policies/p1/rules/r1`);
      out(`  applied log: GET ${sim.url}/_sim/log   watermark: GET ${sim.url}/watermark   faults: POST ${sim.url}/_sim/faults`);
      sim.events.on('applied', (e) => out(`applied seq=${e.seq ?? '-'} epoch=${e.epoch ?? '-'} ${e.method} ${e.path}`));
      sim.events.on('refused', (e) => out(`refused ${e.status} ${e.path}: ${e.reason}`));
      await untilSignal();
      await sim.close();
    },
  },

  agent: {
    summary: 'run an agent: consume its queue and push messages to the devices',
    usage:
      'baton agent --id ID --devices FILE [--namespace NS] [--prefetch N] [--on-permanent block|skip]\n' +
      '            [--queue-type classic|quorum] [--heartbeat-interval MS]\n' +
      '  env: BATON_AGENT_KEY or BATON_AGENT_KEY_FILE (its credential: `baton agent-key ID`),\n' +
      '       BATON_AMQP_URL (default amqp://guest:guest@127.0.0.1:5672), BATON_LOG_LEVEL',
    options: {
      id: { type: 'string' },
      devices: { type: 'string' },
      namespace: { type: 'string' },
      prefetch: { type: 'string' },
      'on-permanent': { type: 'string' },
      'queue-type': { type: 'string' },
      'heartbeat-interval': { type: 'string' },
    },
    async run(v) {
      if (!v.id) throw new BatonError('invalid-config', 'baton agent needs --id ID (its queue is <namespace>.agent.<ID>)');
      if (!v.devices) throw new BatonError('invalid-config', 'baton agent needs --devices FILE (JSON: {"devices":[{"id":"fw1","url":"http://127.0.0.1:8181"}]})');
      const logger = cliLogger(env.logLevel, 'agent');
      const agent = await startAgent(
        {
          id: v.id as string,
          devices: loadDevicesFile(v.devices as string),
          ...(env.agentKey ? { key: env.agentKey } : {}),
          ...(env.agentKeyFile ? { keyFile: env.agentKeyFile } : {}),
          ...(env.amqpUrl ? { amqpUrl: env.amqpUrl } : {}),
          ...((v.namespace ?? env.namespace) ? { namespace: (v.namespace ?? env.namespace) as string } : {}),
          ...(v.prefetch !== undefined ? { prefetch: num(v.prefetch, 'prefetch')! } : {}),
          ...(v['on-permanent'] !== undefined ? { onPermanent: v['on-permanent'] as 'block' } : {}),
          ...(v['queue-type'] !== undefined ? { queueType: v['queue-type'] as 'classic' } : {}),
          ...(v['heartbeat-interval'] !== undefined ? { heartbeatInterval: num(v['heartbeat-interval'], 'heartbeat-interval')! } : {}),
        },
        { logger },
      );
      out(`agent ${agent.id} consuming ${agent.queue}`);
      const sig = await untilSignal();
      logger.info({ signal: sig }, 'stopping: finishing requests in flight, requeueing the rest');
      await agent.stop();
    },
  },

  secret: {
    summary: 'print a fresh deployment secret (every runtime gets it; agents get only their own key)',
    usage: 'baton secret\n  keep it like a password: BATON_SECRET (or BATON_SECRET_FILE) for every runtime; `baton agent-key ID` derives each agent\'s credential from it',
    options: {},
    async run() {
      out(newSecret());
    },
  },

  'agent-key': {
    summary: 'print the credential of one agent, derived from the deployment secret',
    usage: 'baton agent-key ID\n  env: BATON_SECRET or BATON_SECRET_FILE (the deployment secret)\n  give the line to agent ID only, as BATON_AGENT_KEY (or in a file named by BATON_AGENT_KEY_FILE)',
    options: {},
    positionals: true,
    async run(_v, positionals = []) {
      const [id, extra] = positionals;
      if (!id || extra !== undefined) throw new BatonError('invalid-config', 'usage: baton agent-key ID (one agent id)');
      if (!isId(id)) throw new BatonError('invalid-config', `"${printable(id)}" is not an agent id (a letter or digit, then letters, digits, ".", "_" or "-", at most 64)`);
      // the same checks as a runtime's: a missing or short secret is refused, saying how to make one
      const { secret } = resolveRuntimeConfig({ devices: ['x'], ...(env.secret ? { secret: env.secret } : {}), ...(env.secretFile ? { secretFile: env.secretFile } : {}) });
      out(agentCredential(secret, id));
    },
  },

  demo: {
    summary: 'run devices, three agents and the runtime; kill the active agent mid-load and check every device',
    usage:
      'baton demo [--devices N] [--agents N] [--messages N] [--rate PER_SEC] [--kill-at SHARE | --no-kill] [--inspect [PORT]]\n' +
      '  env: BATON_AMQP_URL, BATON_DATABASE_URL (a throw-away database is created next to it), BATON_MANAGEMENT_URL',
    options: {
      devices: { type: 'string' },
      agents: { type: 'string' },
      messages: { type: 'string' },
      rate: { type: 'string' },
      'kill-at': { type: 'string' },
      'no-kill': { type: 'boolean' },
      inspect: { type: 'string' },
    },
    async run(v) {
      const abort = new AbortController();
      process.once('SIGINT', () => {
        out('\nstopping: removing the processes, queues and database this demo made');
        abort.abort();
      });
      const killAt = v['no-kill'] ? null : (num(v['kill-at'], 'kill-at') ?? 0.4);
      if (killAt !== null && (killAt <= 0 || killAt >= 1)) throw new BatonError('invalid-config', '--kill-at must be between 0 and 1 (a share of the load)');
      const { ok } = await runDemo({
        devices: num(v.devices, 'devices') ?? 4,
        agents: num(v.agents, 'agents') ?? 3,
        messages: num(v.messages, 'messages') ?? 6000,
        rate: num(v.rate, 'rate') ?? 1500,
        killAt,
        ...services,
        logger: cliLogger(env.logLevel ?? 'error', 'runtime'),
        out,
        signal: abort.signal,
        ...(v.inspect !== undefined ? { inspectPort: num(v.inspect, 'inspect')! } : {}),
      });
      return ok ? 0 : 1;
    },
  },

  scenario: {
    summary: 'run a scripted failure scenario (bundled NAME or FILE), or list the bundled ones',
    usage: 'baton scenario run NAME|FILE [--json] [--report FILE.html] [--inspect [PORT]]\n       baton scenario list\n  env: BATON_AMQP_URL, BATON_DATABASE_URL, BATON_MANAGEMENT_URL',
    options: { json: { type: 'boolean' }, report: { type: 'string' }, inspect: { type: 'string' } },
    positionals: true,
    async run(v, positionals = []) {
      const [sub, target] = positionals;
      if (sub === 'list') {
        for (const f of readdirSync(scenarioDir).filter((x) => x.endsWith('.json')).sort()) {
          const sc = loadScenario(join(scenarioDir, f));
          out(`${sc.name.padEnd(26)} ${sc.description}`);
        }
        return;
      }
      if (sub !== 'run' || !target) throw new BatonError('invalid-config', 'usage: baton scenario run NAME|FILE [--json] [--report FILE.html], or baton scenario list');
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
    },
  },

  sim: {
    summary: 'deterministic simulation: the real runtime and agents over in-memory services, seeded faults, invariants checked',
    usage:
      'baton sim [--seeds N] [--seed S] [--model narrow|wide] [--messages N] [--plant drop-parked-row] [--verbose] [--keep-going]\n' +
      '  --seeds N runs seeds 1..N (from --seed S when given); --seed S alone replays one seed with its trace\n' +
      '  --model wide (the default): two or three runtimes, one to three agents, PostgreSQL and broker faults, pauses, flaps, slow devices; liveness checked after healing\n' +
      '  --model narrow: the first model (one runtime, two agents; kills, stops, crashes, device errors)\n' +
      '  --keep-going: run every seed and count failures by kind of violation (with the first seeds of each)',
    options: { seeds: { type: 'string' }, seed: { type: 'string' }, model: { type: 'string' }, messages: { type: 'string' }, plant: { type: 'string' }, verbose: { type: 'boolean' }, 'keep-going': { type: 'boolean' } },
    async run(v) {
      const plant = v.plant as string | undefined;
      if (plant !== undefined && plant !== 'drop-parked-row') throw new BatonError('invalid-config', `--plant must be drop-parked-row (got ${JSON.stringify(plant)})`);
      const model = (v.model as string | undefined) ?? 'wide';
      if (model !== 'narrow' && model !== 'wide') throw new BatonError('invalid-config', `--model must be narrow or wide (got ${JSON.stringify(model)})`);
      const keepGoing = v['keep-going'] === true;
      const kinds = new Map<string, number[]>();
      const first = num(v.seed, 'seed') ?? 1;
      const count = num(v.seeds, 'seeds') ?? (v.seed !== undefined ? 1 : 200);
      const messages = num(v.messages, 'messages');
      const one = v.seed !== undefined && v.seeds === undefined;
      const started = performance.now();
      let failed = 0;
      for (let seed = first; seed < first + count; seed++) {
        const r = await simulate({ seed, model, ...(messages ? { messages } : {}), ...(plant ? { plant: plant as 'drop-parked-row' } : {}) });
        if (keepGoing && !one) {
          // one line per failed seed; the kinds are the violations with device names and numbers taken out
          if (!r.ok) {
            failed++;
            out(`seed ${seed}: ${r.violations.join('; ')}`);
            for (const k of new Set(r.violations.map((x) => x.replace(/\bfw\d+: /, '').replace(/\b(r|a)\d+\b/g, '$1N').replace(/\d+/g, 'N').replace(/: seq .*$/, '')))) kinds.set(k, [...(kinds.get(k) ?? []), seed]);
          }
          if (process.stderr.isTTY) process.stderr.write(`\r  ${seed - first + 1}/${count} seeds`);
          continue;
        }
        if (one || v.verbose || !r.ok) {
          out(`seed ${seed}: ${r.ok ? 'ok' : 'FAILED'} (${r.stats.accepted} accepted, ${r.stats.applied} applied, ${r.stats.switches} switches, ${r.stats.simulatedMs} ms simulated)`);
          for (const x of r.violations) out(`  violation: ${x}`);
          if (!r.ok || one) for (const line of r.trace) out(`  ${line}`);
          if (!r.ok) out(`  replay: npx baton sim --seed ${seed}${model === 'narrow' ? ' --model narrow' : ''}${plant ? ` --plant ${plant}` : ''}`);
          if (!r.ok && !plant) out(`  keep it: add { "seed": ${seed},${model === 'wide' ? ' "model": "wide",' : ''} "found": "<date>", "bug": "<what it found>" } to scripts/sim-regressions.json (npm test replays every seed there)`);
        }
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
  },

  bench: {
    summary: 'benchmarks: baton side by side with the plain pipeline and its alternatives, in one run',
    usage: 'baton bench [NAME] [--json] [--runs N] [--tiny]\n  names: throughput-one-device, throughput-devices, failover-kill, failover-hang, move-depth, parking, latency, memory\n  env: BATON_AMQP_URL, BATON_DATABASE_URL (throw-away databases are made next to it), BATON_MANAGEMENT_URL',
    options: { json: { type: 'boolean' }, runs: { type: 'string' }, tiny: { type: 'boolean' } },
    positionals: true,
    async run(v, positionals = []) {
      const { benchmarks } = await import('../../scripts/bench/benchmarks.ts');
      const { table } = await import('../../scripts/bench/harness.ts');
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
  },

  _runtime: {
    summary: '',
    usage: 'internal: a runtime driven by `baton scenario run` over IPC',
    options: {},
    async run() {
      await runtimeProcess(JSON.parse(process.env.BATON_SCENARIO_RUNTIME ?? '{}'));
      return new Promise<never>(() => {});
    },
  },

  machines: {
    summary: 'print the statecharts (coordinator, dispatcher, agent) as Mermaid, JSON or DOT',
    usage: 'baton machines [--format mermaid|json|dot] [--machine coordinator|dispatcher|agent]',
    options: { format: { type: 'string' }, machine: { type: 'string' } },
    async run(v) {
      const format = (v.format as string) ?? 'mermaid';
      if (!['mermaid', 'json', 'dot'].includes(format)) throw new BatonError('invalid-config', `--format must be mermaid, json or dot (got ${JSON.stringify(format)})`);
      const names = v.machine ? [v.machine as string] : Object.keys(machines);
      for (const name of names) {
        const m = machines[name];
        if (!m) throw new BatonError('invalid-config', `--machine must be one of ${Object.keys(machines).join(', ')} (got ${JSON.stringify(name)})`);
        if (format === 'json') out(JSON.stringify(toGraph(m), null, 2));
        else if (format === 'dot') out(toDot(m));
        else out(`%% ${name}\n${toMermaid(m)}\n`);
      }
    },
  },

  status: {
    summary: 'show the active agent, epoch, parked messages, queue depth, agents and devices',
    usage: 'baton status [--json] [--namespace NS]\n  env: BATON_AMQP_URL, BATON_DATABASE_URL',
    options: { json: { type: 'boolean' }, namespace: { type: 'string' } },
    async run(v) {
      const s = await readStatus({
        ...services,
        namespace: (v.namespace as string) ?? env.namespace ?? 'baton',
      });
      if (v.json) {
        out(statusJson(s));
        return;
      }
      for (const line of statusText(s)) out(line);
    },
  },
};

function help(): string {
  return [
    'baton: ordered, lossless configuration delivery to network devices',
    '',
    'usage: baton <command> [options]   (baton <command> --help for its options)',
    '',
    ...Object.entries(commands)
      .filter(([name]) => !name.startsWith('_'))
      .map(([name, c]) => `  ${name.padEnd(9)} ${c.summary}`),
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(help());
    return 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`baton: unknown command "${name}"\n\n${help()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(`${cmd.summary}\n\nusage: ${cmd.usage}`);
    return 0;
  }
  // `--inspect` may come without its port
  const args = rest.flatMap((a, i) => (a === '--inspect' && (rest[i + 1] === undefined || rest[i + 1]!.startsWith('--')) ? [a, '7070'] : [a]));
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args, options: cmd.options, strict: true, allowPositionals: cmd.positionals ?? false });
    values = parsed.values as typeof values;
    positionals = parsed.positionals;
  } catch (err) {
    process.stderr.write(`baton ${name}: ${(err as Error).message}\n\nusage: ${cmd.usage}\n`);
    return 2;
  }
  return (await cmd.run(values, positionals)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    const msg = isBatonError(err) ? `${err.message} [${err.code}]` : (err as Error).stack ?? String(err);
    process.stderr.write(`baton: ${msg}\n`);
    process.exit(1);
  },
);
