// What the full test suite needs from the machine, how to tell whether it is there, and how to make
// it so: PostgreSQL, RabbitMQ, RabbitMQ's management API with the shovel, and Chromium. Used by the
// set-up step that `npm test` runs first (test/setup.ts), and by the tests that need the management
// API or a browser, so that a run which skipped the set-up fails at once with the same message.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { localManagementUrl } from '../../src/config.ts';
import { AMQP_URL, DATABASE_URL } from './services.ts';

/** The Chromium the inspector test drives (Debian's package). */
export const CHROMIUM_PATH = '/usr/bin/chromium';
export const MANAGEMENT_URL = localManagementUrl;
export const RABBITMQ_PLUGINS = ['rabbitmq_shovel', 'rabbitmq_shovel_management'];

export interface Item {
  name: string;
  /** resolves true when the item is there */
  check(): Promise<boolean>;
  /** what makes it so on this machine, or why it cannot: a string is the reason nothing can be done here */
  fix(): { run(): void; says: string } | string;
  /** the exact command a person types to fix it */
  command: string;
  /** how long to wait after `fix` for `check` to hold */
  settleMs: number;
}

const isRoot = () => process.getuid?.() === 0;
const has = (cmd: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const sh = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => () => {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, ...env } });
};
const hostOf = (url: string) => new URL(url);
const isLocal = (url: string) => ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(hostOf(url).hostname);
const where = (url: string) => `${hostOf(url).hostname}:${hostOf(url).port}`;

/** True when something accepts TCP connections at the URL's host and port. */
function listening(url: string, defaultPort: number, ms = 1500): Promise<boolean> {
  const u = hostOf(url);
  return new Promise((resolve) => {
    const s = connect({ host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || defaultPort), timeout: ms });
    const done = (ok: boolean) => (s.destroy(), resolve(ok));
    s.once('connect', () => done(true));
    s.once('timeout', () => done(false));
    s.once('error', () => done(false));
  });
}

/** GET on the management API; true on 200. */
async function managementGet(path: string, ms = 1500): Promise<boolean> {
  const u = new URL(MANAGEMENT_URL);
  const auth = 'Basic ' + Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
  try {
    const res = await fetch(`${u.protocol}//${u.host}/api${path}`, { headers: { authorization: auth }, signal: AbortSignal.timeout(ms) });
    await res.arrayBuffer();
    return res.ok;
  } catch {
    return false;
  }
}

const pgStart = () => {
  const versions = existsSync('/etc/postgresql') ? readdirSync('/etc/postgresql') : [];
  return `pg_ctlcluster --skip-systemctl-redirect ${versions[0] ?? '$(ls /etc/postgresql)'} main start`;
};

export const postgres: Item = {
  name: `PostgreSQL at ${where(DATABASE_URL)}`,
  check: () => listening(DATABASE_URL, 5432),
  get command() {
    return pgStart();
  },
  fix() {
    if (!isLocal(DATABASE_URL)) return `it is not on this machine (BATON_DATABASE_URL); start it there`;
    if (!has('pg_ctlcluster') || !existsSync('/etc/postgresql')) return 'PostgreSQL is not installed here (no pg_ctlcluster)';
    const [cmd, ...args] = pgStart().split(' ');
    return { run: sh(cmd!, args), says: 'started it' };
  },
  settleMs: 60_000,
};

export const rabbitmq: Item = {
  name: `RabbitMQ at ${where(AMQP_URL)}`,
  check: () => listening(AMQP_URL, 5672),
  command: 'rabbitmq-server -detached',
  fix() {
    if (!isLocal(AMQP_URL)) return 'it is not on this machine (BATON_AMQP_URL); start it there';
    if (!has('rabbitmq-server')) return 'RabbitMQ is not installed here (no rabbitmq-server)';
    return { run: sh('rabbitmq-server', ['-detached']), says: 'started it' };
  },
  settleMs: 120_000,
};

export const management: Item = {
  name: `RabbitMQ management API and shovel at ${where(MANAGEMENT_URL)}`,
  // /api/shovels answers only with the shovel's management plugin, which needs the shovel itself
  check: async () => (await managementGet('/overview')) && (await managementGet('/shovels')),
  command: `rabbitmq-plugins enable ${RABBITMQ_PLUGINS.join(' ')}`,
  fix() {
    if (!isLocal(MANAGEMENT_URL)) return 'the broker is not on this machine; enable the plugins there';
    if (!has('rabbitmq-plugins')) return 'rabbitmq-plugins is not installed here';
    return { run: sh('rabbitmq-plugins', ['enable', ...RABBITMQ_PLUGINS]), says: `enabled ${RABBITMQ_PLUGINS.join(', ')}` };
  },
  settleMs: 60_000,
};

export const chromium: Item = {
  name: `Chromium at ${CHROMIUM_PATH} (the inspector's browser test)`,
  check: async () => existsSync(CHROMIUM_PATH),
  command: 'sudo apt-get install -y chromium',
  fix() {
    if (!has('apt-get')) return 'there is no apt-get here; install Debian\'s chromium package by other means';
    if (!isRoot()) return 'installing it needs root';
    const env = { DEBIAN_FRONTEND: 'noninteractive' };
    return {
      run: () => {
        try {
          sh('apt-get', ['install', '-y', '-q', 'chromium'], env)();
        } catch {
          sh('apt-get', ['update', '-q'], env)();
          sh('apt-get', ['install', '-y', '-q', 'chromium'], env)();
        }
      },
      says: "installed Debian's chromium",
    };
  },
  settleMs: 0,
};

/** Everything `npm test` needs, in the order it is set up. */
export const items: Item[] = [postgres, rabbitmq, management, chromium];

/** The one message for an item that is missing: what, why, and the command that fixes it. */
export function missing(item: Item, why?: string): string {
  return `${item.name} is missing${why ? ` (${why})` : ''}. Fix: \`${item.command}\`, or run \`npm test\`, whose set-up step does it when it can.`;
}

/** For a test file that needs the item: throws the set-up message at once when it is not there. */
export async function requireItem(item: Item): Promise<void> {
  if (!(await item.check())) throw new Error(missing(item, 'the set-up step of `npm test` was not run, or could not fix it'));
}
