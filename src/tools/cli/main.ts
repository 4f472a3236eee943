/**
 * The `baton` command line: the table of commands, the help, the parsing of options, the exit code.
 * Each command lives in a file of its own; the bin (`scripts/baton.mjs`) adds the ones that live
 * outside `src/` (the benchmarks) as `extraCommands`.
 */
import { parseArgs } from 'node:util';
import { isBatonError } from '../../errors.ts';
import { agentKey } from './agent-key.ts';
import { agent } from './agent.ts';
import { audit } from './audit.ts';
import { out, type Command, type CommandValues } from './command.ts';
import { deadLetters } from './dead-letters.ts';
import { demo } from './demo.ts';
import { device } from './device.ts';
import { devices } from './devices.ts';
import { handover } from './handover.ts';
import { internalRuntime } from './internal-runtime.ts';
import { machines } from './machines.ts';
import { pause, resume } from './pause.ts';
import { scenario } from './scenario.ts';
import { secret } from './secret.ts';
import { serve } from './serve.ts';
import { sim } from './sim.ts';
import { status } from './status.ts';
import { unblock } from './unblock.ts';
import { wait } from './wait.ts';

export type { Command } from './command.ts';

/** The commands of `src/`, in the order the help lists them; a name starting with `_` is not listed. */
const builtIn: Array<[string, Command]> = [
  ['device', device],
  ['agent', agent],
  ['serve', serve],
  ['secret', secret],
  ['agent-key', agentKey],
  ['demo', demo],
  ['scenario', scenario],
  ['sim', sim],
  ['_runtime', internalRuntime],
  ['machines', machines],
  ['status', status],
  ['devices', devices],
  ['pause', pause],
  ['resume', resume],
  ['unblock', unblock],
  ['dead-letters', deadLetters],
  ['handover', handover],
  ['wait', wait],
  ['audit', audit],
];

export interface CliOptions {
  /** commands added by the bin, each listed after its `listedAfter` */
  extraCommands?: Record<string, Command>;
}

/** The built-in commands with the extra ones put in their places. */
export function commandTable(extra: Record<string, Command> = {}): Map<string, Command> {
  const table = [...builtIn];
  for (const [name, c] of Object.entries(extra)) {
    const after = table.findIndex(([n]) => n === c.listedAfter);
    table.splice(after < 0 ? table.length : after + 1, 0, [name, c]);
  }
  return new Map(table);
}

function help(commands: Map<string, Command>): string {
  return [
    'baton: ordered, lossless configuration delivery to network devices',
    '',
    'usage: baton <command> [options]   (baton <command> --help for its options)',
    '',
    ...[...commands]
      .filter(([name]) => !name.startsWith('_'))
      .map(([name, c]) => `  ${name.padEnd(12)} ${c.summary}`),
  ].join('\n');
}

/** `--inspect` may come without its port: it then means 7070. */
const withInspectPort = (args: string[]) => args.flatMap((a, i) => (a === '--inspect' && (args[i + 1] === undefined || args[i + 1]!.startsWith('--')) ? [a, '7070'] : [a]));

/** Runs `baton <argv>` and resolves with its exit code: 0 done, 1 failed, 2 a usage error. */
export async function runCli(argv: string[], commands: Map<string, Command>): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    out(help(commands));
    return 0;
  }
  const cmd = commands.get(name);
  if (!cmd) {
    process.stderr.write(`baton: unknown command "${name}"\n\n${help(commands)}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    out(`${cmd.summary}\n\nusage: ${cmd.usage}`);
    return 0;
  }
  let values: CommandValues;
  let positionals: string[];
  try {
    const parsed = parseArgs({ args: withInspectPort(rest), options: cmd.options, strict: true, allowPositionals: cmd.positionals ?? false });
    values = parsed.values as CommandValues;
    positionals = parsed.positionals;
  } catch (err) {
    process.stderr.write(`baton ${name}: ${(err as Error).message}\n\nusage: ${cmd.usage}\n`);
    return 2;
  }
  return (await cmd.run(values, positionals)) ?? 0;
}

/** The entry point of the bin: runs the command and exits with its code; an error is printed with its code. */
export function main(argv: string[], options: CliOptions = {}): void {
  runCli(argv, commandTable(options.extraCommands)).then(
    (code) => process.exit(code),
    (err) => {
      const msg = isBatonError(err) ? `${err.message} [${err.code}]` : (err as Error).stack ?? String(err);
      process.stderr.write(`baton: ${msg}\n`);
      process.exit(1);
    },
  );
}
