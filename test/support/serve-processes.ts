// Real `baton serve` processes over a test cluster's database and namespace, the machine's python3
// running scripts/baton_client.py (or the driver test/python/serve_driver.py that imports it), and
// the plain HTTP calls a test makes beside them. Every process started is killed by `killAll()`.
// `holdAnswerRecording` opens the crash window of src/serve/README.md on purpose.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MikroORM } from '@mikro-orm/postgresql';
import { spawnBaton, type ChildHandle } from '../../src/tools/processes.ts';
import type { Cluster } from './cluster.ts';
import { AMQP_URL } from './services.ts';
import { TEST_SECRET } from './trust.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface ServeProcess extends ChildHandle {
  /** the base URL it printed, without the trailing slash (`http://127.0.0.1:41234`) */
  base: string;
}

export interface PythonProcess {
  exited: Promise<number | string>;
  stdout(): string;
  stderr(): string;
  /** the JSON lines printed so far */
  lines<T = Record<string, unknown>>(): T[];
  /** resolves once `check(lines)` holds; rejects if the process ends first */
  until(check: (lines: Array<Record<string, unknown>>) => boolean): Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export function serveProcesses(c: Cluster) {
  const children: Array<{ kill(s: NodeJS.Signals): void; exited: Promise<unknown> }> = [];

  /** `baton serve` on a free port; resolves once it listens (its runtime started, leading or standing by). */
  async function startServe(runtimeId: string, flags: string[] = []): Promise<ServeProcess> {
    const p = spawnBaton(['serve', '--devices', c.devicesFile, '--namespace', c.namespace, '--runtime-id', runtimeId, '--port', '0', ...flags], {
      BATON_AMQP_URL: AMQP_URL,
      BATON_DATABASE_URL: c.db.url,
      BATON_SECRET: TEST_SECRET,
      BATON_LOG_LEVEL: 'warn',
    });
    children.push(p);
    const [, url] = await p.waitForOutput(/baton serve listening on (\S+)/);
    return { ...p, base: url!.replace(/\/+$/, '') };
  }

  /** python3 with `args` (a script and its arguments, relative to the repository), output captured. */
  function python(args: string[], env: Record<string, string> = {}): PythonProcess {
    const child = spawn('python3', ['-B', ...args], { cwd: root, env: { ...process.env, PYTHONUNBUFFERED: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    const lines = () => out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    const waiters = new Set<() => void>();
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      for (const w of [...waiters]) w();
    });
    const until = (check: (l: Array<Record<string, unknown>>) => boolean) =>
      new Promise<void>((resolve, reject) => {
        const w = () => check(lines()) && (waiters.delete(w), resolve());
        waiters.add(w);
        w();
        void exited.then((code) => (check(lines()) ? resolve() : reject(new Error(`python3 ${args.join(' ')} exited (${code}) first: ${err.slice(-3000)}`))));
      });
    const handle = { exited, stdout: () => out, stderr: () => err, lines: lines as PythonProcess['lines'], until, kill: (s: NodeJS.Signals = 'SIGTERM') => void child.kill(s) };
    children.push(handle);
    return handle;
  }

  /** Kills every process started here (SIGKILL) and waits for each to end. */
  async function killAll(): Promise<void> {
    for (const p of children.splice(0)) {
      p.kill('SIGKILL');
      await p.exited;
    }
  }

  return { startServe, python, killAll };
}

/** A tokens file (`label:token` a line) in a folder of its own. */
export function writeTokensFile(tokens: Record<string, string>): string {
  const file = join(mkdtempSync(join(tmpdir(), 'baton-tokens-')), 'tokens.txt');
  writeFileSync(file, Object.entries(tokens).map(([label, token]) => `${label}:${token}\n`).join(''), { mode: 0o600 });
  return file;
}

/** One HTTP call with a JSON body (no redirect followed); the parsed answer. */
export async function call(method: 'GET' | 'POST', url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: { accept: 'application/json', ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, json };
}

/** Asks `ask()` again (every `everyMs`) until `done(answer)` holds; the answer. For what no event announces (another process's state). */
export async function poll<T>(ask: () => Promise<T>, done: (answer: T) => boolean, what: string, ms = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const answer = await ask().catch((err: Error) => err as unknown as T);
    if (!(answer instanceof Error) && done(answer)) return answer;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${answer instanceof Error ? answer.message : JSON.stringify(answer)})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Holds the recording of one Idempotency-Key's answer in the database: the serve that carried the
 * request out (its message is accepted, durable) waits inside that UPDATE, so a kill then lands in the
 * crash window src/serve/README.md names (the key claimed, its answer never recorded). A trigger on
 * `idempotency_keys` sleeps in the UPDATE that sets `key`'s answer; `held()` resolves once a session
 * sleeps there; `end()` terminates that session (its UPDATE is rolled back: the answer is never
 * recorded) and drops the trigger. Call it once the serve has migrated the database.
 */
export async function holdAnswerRecording(databaseUrl: string, key: string) {
  const orm = await MikroORM.init({ clientUrl: databaseUrl, entities: [], discovery: { warnWhenNoEntities: false }, debug: false, pool: { min: 0, max: 2 } });
  const sql = (text: string) => orm.em.getConnection().execute(text) as Promise<Array<Record<string, unknown>>>;
  const sleeping = "select pid from pg_stat_activity where datname = current_database() and wait_event = 'PgSleep' and query ilike '%idempotency_keys%'";
  await sql(`create function baton_test_hold() returns trigger language plpgsql as $$
    begin
      if new.idem_key = '${key.replace(/'/g, "''")}' and new.answer is not null and old.answer is null then perform pg_sleep(300); end if;
      return new;
    end $$`);
  await sql('create trigger baton_test_hold before update on idempotency_keys for each row execute function baton_test_hold()');
  return {
    held: () => poll(() => sql(sleeping), (rows) => rows.length === 1, `the answer of ${key} held in the database`, 30_000, 50),
    async end() {
      try {
        await sql(`select pg_terminate_backend(pid) from (${sleeping}) s`);
        await sql('drop trigger if exists baton_test_hold on idempotency_keys');
        await sql('drop function if exists baton_test_hold()');
      } finally {
        await orm.close(true);
      }
    },
  };
}
