/** Runs baton commands as real child processes (agents in the demo, scenarios and tests). */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DeviceConfig } from '../ports.ts';

/** Path of the `baton` command. */
export const batonBin = fileURLToPath(new URL('../../scripts/baton.mjs', import.meta.url));

export interface ChildHandle {
  child: ChildProcess;
  /** resolves with the exit code (or signal) when the process ends */
  exited: Promise<number | string>;
  /** everything the process wrote to stderr so far (logs) */
  stderr(): string;
  /** everything the process wrote to stdout so far */
  stdout(): string;
  /** resolves with the first match of `pattern` on stdout; rejects if the process exits first */
  waitForOutput(pattern: RegExp): Promise<RegExpMatchArray>;
  kill(signal?: NodeJS.Signals): void;
}

/** The deployment secret stays with runtimes: a child is never handed it unless asked (`env`). */
const SECRET_VARIABLES = ['BATON_SECRET', 'BATON_SECRET_FILE'];

/** Starts `baton <args>` with the given environment; output is captured, not inherited. */
export function spawnBaton(args: string[], env: Record<string, string> = {}): ChildHandle {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SECRET_VARIABLES.includes(k)));
  const child = spawn(process.execPath, [batonBin, ...args], {
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
    if (err.length > 1_000_000) err = err.slice(-500_000);
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.length > 1_000_000) out = out.slice(-500_000);
  });
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const waitForOutput = (pattern: RegExp) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = out.match(pattern);
        if (!m) return;
        child.stdout!.off('data', check);
        resolve(m);
      };
      child.stdout!.on('data', check);
      check();
      void exited.then((code) => reject(new Error(`process exited (${code}) before printing ${pattern}: ${err.slice(-2000)}`)));
    });
  return { child, exited, stderr: () => err, stdout: () => out, waitForOutput, kill: (s = 'SIGTERM') => void child.kill(s) };
}

/** Writes a devices file to a temporary folder and returns its path. */
export function writeDevicesFile(devices: DeviceConfig[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-'));
  const file = join(dir, 'devices.json');
  writeFileSync(file, JSON.stringify({ devices }, null, 2));
  return file;
}

/** Starts an agent process: `baton agent --id ID --devices FILE` plus extra flags; `key` is its credential (`agentCredential`). */
export function spawnAgent(o: { id: string; key: string; devicesFile: string; amqpUrl: string; namespace: string; extra?: string[]; logLevel?: string }): ChildHandle {
  return spawnBaton(['agent', '--id', o.id, '--devices', o.devicesFile, '--namespace', o.namespace, ...(o.extra ?? [])], {
    BATON_AMQP_URL: o.amqpUrl,
    BATON_AGENT_KEY: o.key,
    BATON_LOG_LEVEL: o.logLevel ?? 'info',
  });
}
