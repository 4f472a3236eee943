/**
 * Configuration: every option with its default, resolved once, validated with messages that name
 * the option, and frozen. `fromEnv()` is the only reader of `process.env`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { BatonError } from './errors.ts';
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
}

export const commonDefaults: CommonOptions = {
  amqpUrl: 'amqp://guest:guest@127.0.0.1:5672',
  namespace: 'baton',
  queueType: 'classic',
  connectAttempts: 3,
};

/** The management API of a RabbitMQ on this machine with its default user (tests, scenarios, benchmarks). */
export const localManagementUrl = 'http://guest:guest@127.0.0.1:15672';

export const runtimeDefaults: Omit<RuntimeConfig, 'devices'> = {
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
};

export const agentDefaults: Omit<AgentConfig, 'id' | 'devices'> = {
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
const idPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** An id as agents, devices and namespaces are configured with: a letter or digit, then letters, digits, ".", "_" or "-", at most 64 in all. */
export const isId = (v: unknown): v is string => typeof v === 'string' && idPattern.test(v);
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
      const shown = k.toLowerCase().includes('url') ? typeof v : JSON.stringify(v);
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
};

/** Validates runtime options (devices given as ids or as `DeviceConfig`s) and fills defaults. */
export function resolveRuntimeConfig(given: Record<string, unknown>): RuntimeConfig {
  const devices = Array.isArray(given.devices)
    ? given.devices.map((d) => (typeof d === 'object' && d !== null ? (d as DeviceConfig).id : d))
    : given.devices;
  return resolve<RuntimeConfig>('createRuntime', runtimeDefaults, runtimeChecks, { ...given, devices });
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
};

export function resolveAgentConfig(given: Record<string, unknown>): AgentConfig {
  return resolve<AgentConfig>('startAgent', agentDefaults, agentChecks, given);
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

export type EnvOptions = Partial<Pick<RuntimeConfig, 'amqpUrl' | 'databaseUrl' | 'namespace'>> & { managementUrl?: string; logLevel?: string };

/** The only reader of `process.env`: BATON_AMQP_URL, BATON_DATABASE_URL, BATON_NAMESPACE, BATON_MANAGEMENT_URL, BATON_LOG_LEVEL. */
export function fromEnv(env: NodeJS.ProcessEnv = process.env): EnvOptions {
  const out: EnvOptions = {};
  if (env.BATON_LOG_LEVEL) out.logLevel = env.BATON_LOG_LEVEL;
  if (env.BATON_AMQP_URL) out.amqpUrl = env.BATON_AMQP_URL;
  if (env.BATON_DATABASE_URL) out.databaseUrl = env.BATON_DATABASE_URL;
  if (env.BATON_NAMESPACE) out.namespace = env.BATON_NAMESPACE;
  if (env.BATON_MANAGEMENT_URL) out.managementUrl = env.BATON_MANAGEMENT_URL;
  return out;
}
