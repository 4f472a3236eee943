/**
 * Configuration: every option with its default, resolved once, validated with messages that name
 * the option, and frozen. `fromEnv()` is the only reader of `process.env`.
  *
 * Longer than 300 lines: every option of both processes with its default and its check, in one place
 * an operator can read top to bottom.
 */
import { existsSync, readFileSync } from 'node:fs';
import { BatonError } from './errors.ts';
import { isId } from './ids.ts';
import { MAKE_SECRET, MIN_SECRET_LENGTH, parseAgentCredential } from './trust.ts';
import type { DeviceConfig } from './ports.ts';

/** Options shared by the runtime and the agents. */
export interface CommonOptions {
  /** RabbitMQ URL */
  amqpUrl: string;
  /** prefix of every queue and exchange (`<namespace>.agent.<id>`) */
  namespace: string;
  /** agent queues: `classic`, or `quorum` so that a RabbitMQ cluster replicates them */
  queueType: 'classic' | 'quorum';
  /** connection attempts at start before failing */
  connectAttempts: number;
}

export interface RuntimeConfig extends CommonOptions {
  /** PostgreSQL URL; the database is created if missing */
  databaseUrl: string;
  /** the devices messages may address (ids; urls are the agents' business) */
  devices: readonly string[];
  /** publishes sent but not yet confirmed by the broker, at most */
  maxUnconfirmed: number;
  /** largest message body accepted by dispatch(), bytes */
  maxMessageBytes: number;
  /** seqs reserved per database round trip, per device */
  seqBlockSize: number;
  /** the patent's periodic check of the active agent, ms */
  checkAgentLoopTime: number;
  /** an agent without a heartbeat for this long is suspect, ms */
  heartbeatTimeout: number;
  /** a suspect agent that still holds its queue is declared hung after this long, ms */
  hungTimeout: number;
  /** an agent whose queue lost its consumer is declared dead after this long, ms */
  consumerGrace: number;
  /** period of the consumer probe of the active agent's queue, ms */
  probeInterval: number;
  /** most rows per parking transaction (group commit) */
  parkBatchSize: number;
  /** rows per replay batch */
  replayBatchSize: number;
  /** RabbitMQ management API (e.g. http://guest:guest@127.0.0.1:15672): fences hung agents at once and moves queues by shovel; null: client-side move, no forced close */
  managementUrl: string | null;
  /** how long a lease grant lets an agent write, ms */
  leaseDuration: number;
  /** how long the leading runtime's lease lives without renewal, ms */
  leaderTtl: number;
  /** how long any PostgreSQL call may take before it counts as failed (a half-open connection never answers), ms */
  databaseTimeout: number;
  /** the deployment secret (at least 32 characters; `npx baton secret` makes one): every key is derived from it. Never logged */
  secret: string;
  /** a file holding the secret (instead of `secret`); null when `secret` was given */
  secretFile: string | null;
  /** agents the runtime keeps track of, at most (the longest-dead is forgotten to make room) */
  maxAgents: number;
  /** a dead agent not heard from for this long is forgotten (not the active one), ms */
  forgetAgentAfter: number;
  /** a device whose oldest message not yet applied is older than this raises the `device-lagging` alarm, ms */
  alarmLagMs: number;
  /** a switch that stays in one phase longer than this raises the `switch-slow` alarm, ms */
  alarmSwitchPhaseMs: number;
  /** the base URL of this runtime's `baton serve` (e.g. http://10.0.0.5:8080), stored with its leader term so that standbys can send clients there; null: none */
  advertise: string | null;
}

export interface AgentConfig extends CommonOptions {
  /** this agent's id: its queue is `<namespace>.agent.<id>` */
  id: string;
  /** where each device lives */
  devices: readonly DeviceConfig[];
  /** messages taken from the queue before any is acked, over all devices */
  prefetch: number;
  /** ms between heartbeats */
  heartbeatInterval: number;
  /** after a 4xx: `block` holds the device's line, `skip` goes on */
  onPermanent: 'block' | 'skip';
  /** default device request deadline, ms */
  requestTimeoutMs: number;
  /** first and largest wait between retries of a transient failure, ms */
  retryInitialMs: number;
  retryMaxMs: number;
  /** ms between batched receipts */
  receiptFlushMs: number;
  /** AMQP heartbeat, s: a stopped agent's connection is dropped by the broker after about twice this */
  brokerHeartbeatSec: number;
  /** ms after its lease lapsed that an agent gives its queue back (cancels its consumer) */
  releaseAfterMs: number;
  /** this agent's credential (`npx baton agent-key <id>` prints it): its own key and the stream key. Never logged */
  key: string;
  /** a file holding the credential (instead of `key`); null when `key` was given */
  keyFile: string | null;
}

export const commonDefaults: CommonOptions = {
  amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
  namespace: 'baton',
  queueType: 'classic',
  connectAttempts: 3,
};

/** The management API of a RabbitMQ on this machine with its default user (tests, scenarios, benchmarks). */
export const localManagementUrl = 'http://guest:guest@127.0.0.1:15672';

export const runtimeDefaults: Omit<RuntimeConfig, 'devices' | 'secret'> = {
  ...commonDefaults,
  databaseUrl: 'postgresql://postgres@127.0.0.1:5432/baton',
  maxUnconfirmed: 1000,
  maxMessageBytes: 1024 * 1024,
  seqBlockSize: 1000,
  checkAgentLoopTime: 30_000,
  heartbeatTimeout: 1000,
  hungTimeout: 1500,
  consumerGrace: 100,
  probeInterval: 25,
  parkBatchSize: 1000,
  replayBatchSize: 1000,
  managementUrl: null,
  leaseDuration: 1500,
  leaderTtl: 5000,
  databaseTimeout: 10_000,
  secretFile: null,
  maxAgents: 1000,
  forgetAgentAfter: 10 * 60_000,
  alarmLagMs: 60_000,
  alarmSwitchPhaseMs: 30_000,
  advertise: null,
};

export const agentDefaults: Omit<AgentConfig, 'id' | 'devices' | 'key'> = {
  ...commonDefaults,
  prefetch: 1000,
  heartbeatInterval: 250,
  onPermanent: 'block',
  requestTimeoutMs: 5000,
  retryInitialMs: 50,
  retryMaxMs: 2000,
  receiptFlushMs: 50,
  brokerHeartbeatSec: 5,
  releaseAfterMs: 1000,
  keyFile: null,
};

type Check = (v: unknown) => string | null;
const int = (min: number): Check => (v) => (Number.isSafeInteger(v) && (v as number) >= min ? null : `an integer >= ${min}`);
const oneOf = (...vals: string[]): Check => (v) => (vals.includes(v as string) ? null : `one of ${vals.map((x) => `"${x}"`).join(', ')}`);
const url = (...protocols: string[]): Check => (v) => {
  if (typeof v !== 'string') return 'a URL string';
  try {
    return protocols.includes(new URL(v).protocol) ? null : `a URL starting with ${protocols.join(' or ')}`;
  } catch {
    return 'a valid URL';
  }
};
const optionalUrl = (...protocols: string[]): Check => (v) => (v === null ? null : url(...protocols)(v));
/** a base URL clients are sent to: http(s), no credentials, query or fragment (null: none); what is wrong with it, or null */
export const baseUrl: Check = (v) => {
  const bad = optionalUrl('http:', 'https:')(v);
  if (bad || v === null) return bad;
  const u = new URL(v as string);
  return u.username || u.password || u.search || u.hash ? 'a base URL without credentials, query or fragment' : null;
};
/** the management API client decodes the user name and password for Basic auth: a bad escape must fail here, not there */
const credentialsUrl = (...protocols: string[]): Check => (v) => {
  const bad = optionalUrl(...protocols)(v);
  if (bad || v === null) return bad;
  const u = new URL(v as string);
  try {
    decodeURIComponent(u.username);
    decodeURIComponent(u.password);
    return null;
  } catch {
    return 'a URL whose user name and password are valid percent-encoding (write "%" as "%25")';
  }
};
export { isId };
const ident: Check = (v) => (isId(v) ? null : 'an id of letters, digits, ".", "_" or "-" (at most 64)');

const commonChecks: Record<keyof CommonOptions, Check> = {
  amqpUrl: url('amqp:', 'amqps:'),
  namespace: ident,
  queueType: oneOf('classic', 'quorum'),
  connectAttempts: int(1),
};

function resolve<T extends object>(
  what: string,
  defaults: Record<string, unknown>,
  checks: Record<string, Check>,
  given: Record<string, unknown>,
): T {
  const known = new Set(Object.keys(checks));
  for (const k of Object.keys(given)) {
    if (!known.has(k) && given[k] !== undefined) {
      throw new BatonError('invalid-config', `${what}: unknown option "${k}" (known: ${[...known].join(', ')})`, { option: k });
    }
  }
  const out: Record<string, unknown> = {};
  for (const [k, check] of Object.entries(checks)) {
    const v = given[k] !== undefined ? given[k] : defaults[k];
    if (v === undefined) throw new BatonError('invalid-config', `${what}: option "${k}" is required`, { option: k });
    const bad = check(v);
    if (bad) {
      const shown = /url|secret|key|advertise/i.test(k) ? typeof v : JSON.stringify(v);
      throw new BatonError('invalid-config', `${what}: option "${k}" must be ${bad} (got ${shown})`, { option: k });
    }
    out[k] = v;
  }
  return Object.freeze(out) as T;
}

const deviceIds: Check = (v) => {
  if (!Array.isArray(v) || v.length === 0) return 'a non-empty array of device ids';
  for (const id of v) if (ident(id)) return `a non-empty array of device ids (bad id ${JSON.stringify(id)})`;
  return new Set(v).size === v.length ? null : 'a list of distinct device ids';
};

const runtimeChecks: Record<keyof RuntimeConfig, Check> = {
  ...commonChecks,
  databaseUrl: url('postgres:', 'postgresql:'),
  devices: deviceIds,
  maxUnconfirmed: int(1),
  maxMessageBytes: int(1),
  seqBlockSize: int(1),
  checkAgentLoopTime: int(1),
  heartbeatTimeout: int(1),
  hungTimeout: int(1),
  consumerGrace: int(1),
  probeInterval: int(1),
  parkBatchSize: int(1),
  replayBatchSize: int(1),
  managementUrl: credentialsUrl('http:', 'https:'),
  leaseDuration: int(100),
  leaderTtl: int(300),
  databaseTimeout: int(100),
  // read and checked by credentialOption before: here only passed through
  secret: () => null,
  secretFile: () => null,
  maxAgents: int(1),
  forgetAgentAfter: int(1),
  alarmLagMs: int(1),
  alarmSwitchPhaseMs: int(1),
  advertise: baseUrl,
};

/** Reads a secret or credential file: its content without the trailing newline. */
function readCredentialFile(what: string, option: string, path: unknown): string {
  if (typeof path !== 'string' || path === '') throw new BatonError('invalid-config', `${what}: option "${option}" must be the path of a file`, { option });
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new BatonError('invalid-config', `${what}: option "${option}": file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { option, file: path });
  }
}

/**
 * The secret (or credential) given inline as `option` or in the file `fileOption`, one of the two:
 * `need` says what it is for when neither is given. The value never appears in a message.
 */
function credentialOption(what: string, given: Record<string, unknown>, option: string, fileOption: string, need: string): string {
  const inline = given[option];
  const file = given[fileOption];
  if (inline !== undefined && file !== undefined && file !== null) {
    throw new BatonError('invalid-config', `${what}: give option "${option}" or "${fileOption}", not both`, { option });
  }
  const v = file !== undefined && file !== null ? readCredentialFile(what, fileOption, file) : inline;
  if (v === undefined || v === '') throw new BatonError('invalid-config', `${what}: option "${option}" (or "${fileOption}") is required: ${need}`, { option });
  if (typeof v !== 'string') throw new BatonError('invalid-config', `${what}: option "${option}" must be a string (got ${typeof v})`, { option });
  return v;
}

/** The runtime's deployment secret, checked (never quoted). */
function secretOption(given: Record<string, unknown>): string {
  const secret = credentialOption('createRuntime', given, 'secret', 'secretFile', `the deployment secret that signs and checks every message between the runtime and the agents; ${MAKE_SECRET}`);
  if (secret.length < MIN_SECRET_LENGTH) {
    throw new BatonError('invalid-config', `createRuntime: option "secret" is ${secret.length} characters long; it must have at least ${MIN_SECRET_LENGTH}: ${MAKE_SECRET}`, { option: 'secret' });
  }
  return secret;
}

/** Validates runtime options (devices given as ids or as `DeviceConfig`s) and fills defaults. */
export function resolveRuntimeConfig(given: Record<string, unknown>): RuntimeConfig {
  const devices = Array.isArray(given.devices)
    ? given.devices.map((d) => (typeof d === 'object' && d !== null ? (d as DeviceConfig).id : d))
    : given.devices;
  // every other option first (its errors are the more specific), then the secret
  const rest = resolve<RuntimeConfig>('createRuntime', runtimeDefaults, runtimeChecks, { ...given, devices, secret: '' });
  return Object.freeze({ ...rest, secret: secretOption(given) });
}

/** A device's `tls`: known fields, readable PEM files, an https URL, cert and key together. */
function tlsCheck(v: unknown, deviceUrl: string): string | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object { ca, cert, key, allowInvalidCertificate }';
  const t = v as Record<string, unknown>;
  if (!deviceUrl.startsWith('https:')) return 'is set but the url is not https';
  for (const k of Object.keys(t)) if (!['ca', 'cert', 'key', 'allowInvalidCertificate'].includes(k)) return `has unknown field "${k}"`;
  if (t.allowInvalidCertificate !== undefined && typeof t.allowInvalidCertificate !== 'boolean') return '.allowInvalidCertificate must be true or false';
  if ((t.cert === undefined) !== (t.key === undefined)) return 'needs cert and key together';
  for (const k of ['ca', 'cert', 'key'] as const) {
    if (t[k] === undefined) continue;
    if (typeof t[k] !== 'string') return `.${k} must be the path of a PEM file`;
    if (!existsSync(t[k])) return `.${k}: no file ${t[k]}`;
  }
  return null;
}

const deviceList: Check = (v) => {
  if (!Array.isArray(v) || v.length === 0) return 'a non-empty array of { id, url }';
  const seen = new Set<string>();
  for (const [i, d] of v.entries()) {
    const dev = d as Record<string, unknown>;
    if (typeof d !== 'object' || d === null) return `a list of objects (devices[${i}] is not)`;
    if (ident(dev.id)) return `a list of { id, url } (devices[${i}].id is not a valid id)`;
    if (url('http:', 'https:')(dev.url)) return `a list of { id, url } (devices[${i}].url is not an http(s) URL)`;
    if (dev.timeoutMs !== undefined && int(1)(dev.timeoutMs)) return `a list of devices (devices[${i}].timeoutMs must be an integer >= 1)`;
    for (const k of Object.keys(dev)) {
      if (!['id', 'url', 'timeoutMs', 'fencesByEpoch', 'reportsWatermark', 'tls'].includes(k)) return `a list of devices (devices[${i}] has unknown field "${k}")`;
    }
    if (dev.tls !== undefined) {
      const bad = tlsCheck(dev.tls, dev.url as string);
      if (bad) return `a list of devices (devices[${i}].tls ${bad})`;
    }
    if (seen.has(dev.id as string)) return `a list of distinct devices (devices[${i}].id "${dev.id}" repeats)`;
    seen.add(dev.id as string);
  }
  return null;
};

const agentChecks: Record<keyof AgentConfig, Check> = {
  ...commonChecks,
  id: ident,
  devices: deviceList,
  prefetch: int(1),
  heartbeatInterval: int(1),
  onPermanent: oneOf('block', 'skip'),
  requestTimeoutMs: int(1),
  retryInitialMs: int(1),
  retryMaxMs: int(1),
  receiptFlushMs: int(1),
  brokerHeartbeatSec: int(0),
  releaseAfterMs: int(1),
  // read and checked by keyOption before: here only passed through
  key: () => null,
  keyFile: () => null,
};

/** The agent's credential, checked against its id (never quoted). */
function keyOption(given: Record<string, unknown>): string {
  const id = typeof given.id === 'string' ? given.id : '<id>';
  const make = `make it with \`npx baton agent-key ${id}\` where the deployment secret is (BATON_SECRET) and give it to this agent only, as BATON_AGENT_KEY or the key/keyFile option`;
  const key = credentialOption('startAgent', given, 'key', 'keyFile', `this agent's credential, which signs its heartbeats and receipts and checks every message and grant it takes; ${make}`);
  const c = parseAgentCredential(key);
  if ('invalid' in c) throw new BatonError('invalid-config', `startAgent: option "key" ${c.invalid}; ${make}`, { option: 'key' });
  if (c.agentId !== given.id) throw new BatonError('invalid-config', `startAgent: option "key" is the credential of agent "${c.agentId}", not of this agent ("${id}"); ${make}`, { option: 'key' });
  return key;
}

export function resolveAgentConfig(given: Record<string, unknown>): AgentConfig {
  // every other option first: the credential is checked against a valid id
  const rest = resolve<AgentConfig>('startAgent', agentDefaults, agentChecks, { ...given, key: '' });
  return Object.freeze({ ...rest, key: keyOption(given) });
}

/** Reads a devices file: `{ "devices": [{ "id", "url", ... }] }` or a bare array. */
export function loadDevicesFile(path: string): DeviceConfig[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BatonError('invalid-config', `devices file ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { file: path });
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new BatonError('invalid-config', `devices file ${path} is not JSON (${(err as Error).message})`, { file: path });
  }
  const list = Array.isArray(v) ? v : (v as { devices?: unknown })?.devices;
  const bad = deviceList(list);
  if (bad) throw new BatonError('invalid-config', `devices file ${path}: "devices" must be ${bad}`, { file: path });
  return list as DeviceConfig[];
}

export type EnvOptions = Partial<Pick<RuntimeConfig, 'amqpUrl' | 'databaseUrl' | 'namespace' | 'secret' | 'secretFile'>> & {
  managementUrl?: string;
  logLevel?: string;
  /** an agent's credential (BATON_AGENT_KEY) or the file holding it (BATON_AGENT_KEY_FILE) */
  agentKey?: string;
  agentKeyFile?: string;
  /** where `baton devices` finds a running runtime's inspector, and its token */
  inspectorUrl?: string;
  inspectorToken?: string;
  /** `baton serve`'s tokens: `label:token` each, separated by newlines or commas */
  serveTokens?: string;
};

/**
 * The only reader of `process.env`: BATON_AMQP_URL, BATON_DATABASE_URL, BATON_NAMESPACE,
 * BATON_MANAGEMENT_URL, BATON_LOG_LEVEL, BATON_SECRET or BATON_SECRET_FILE (runtimes),
 * BATON_AGENT_KEY or BATON_AGENT_KEY_FILE (agents), BATON_INSPECTOR_URL and BATON_INSPECTOR_TOKEN
 * (`baton devices`), BATON_TOKENS (`baton serve`).
 */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): EnvOptions {
  const out: EnvOptions = {};
  if (env.BATON_SECRET) out.secret = env.BATON_SECRET;
  if (env.BATON_SECRET_FILE) out.secretFile = env.BATON_SECRET_FILE;
  if (env.BATON_AGENT_KEY) out.agentKey = env.BATON_AGENT_KEY;
  if (env.BATON_AGENT_KEY_FILE) out.agentKeyFile = env.BATON_AGENT_KEY_FILE;
  if (env.BATON_LOG_LEVEL) out.logLevel = env.BATON_LOG_LEVEL;
  if (env.BATON_AMQP_URL) out.amqpUrl = env.BATON_AMQP_URL;
  if (env.BATON_DATABASE_URL) out.databaseUrl = env.BATON_DATABASE_URL;
  if (env.BATON_NAMESPACE) out.namespace = env.BATON_NAMESPACE;
  if (env.BATON_MANAGEMENT_URL) out.managementUrl = env.BATON_MANAGEMENT_URL;
  if (env.BATON_INSPECTOR_URL) out.inspectorUrl = env.BATON_INSPECTOR_URL;
  if (env.BATON_INSPECTOR_TOKEN) out.inspectorToken = env.BATON_INSPECTOR_TOKEN;
  if (env.BATON_TOKENS) out.serveTokens = env.BATON_TOKENS;
  return out;
}
