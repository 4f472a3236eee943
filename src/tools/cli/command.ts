/**
 * What every `baton` command is made of: its help (summary, usage), its options for `parseArgs`, and
 * `run`, which resolves with the exit code. Also the few helpers the commands share.
 */
import type { ParseArgsConfig } from 'node:util';
import { BatonError } from '../../errors.ts';

export type CommandValues = Record<string, string | boolean | undefined>;

export interface Command {
  summary: string;
  usage: string;
  options: NonNullable<ParseArgsConfig['options']>;
  /** takes positional arguments (sub-commands, files) */
  positionals?: boolean;
  /** a command added by the bin: `baton --help` lists it after this one (at the end when not given) */
  listedAfter?: string;
  run(values: CommandValues, positionals?: string[]): Promise<number | void>;
}

/** One line on stdout. */
export const out = (line: string) => process.stdout.write(line + '\n');

/** A numeric option, or undefined when not given; anything but a number is refused, naming the flag. */
export const num = (v: unknown, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new BatonError('invalid-config', `--${flag} must be a number (got ${JSON.stringify(v)})`);
  return n;
};

/** Resolves when the process is asked to stop (Ctrl-C or SIGTERM). */
export const untilSignal = () =>
  new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
