/**
 * `baton serve`: a runtime and its HTTP server (API v1, the inspector, /metrics: src/serve/), until
 * SIGTERM or Ctrl-C. Then it refuses new requests (503 `stopping`), answers those in flight (every
 * message it accepted is durable: the runtime's stop waits for the last confirms), stops the runtime
 * and exits 0. Several may run on one database: one leads, the others answer 307 to it.
 *
 * The Idempotency-Keys live in the runtime's database (their own pool, opened once the runtime has
 * brought the schema up to date).
 */
import { readFileSync } from 'node:fs';
import type { InspectionEvent } from 'xstate';
import { createOrmStore } from '../../adapters/orm/store.ts';
import { loadDevicesFile, runtimeDefaults } from '../../config.ts';
import { BatonError } from '../../errors.ts';
import { cliLogger } from '../../logger.ts';
import { createRuntime } from '../../runtime/runtime.ts';
import { startServer } from '../../serve/server.ts';
import { parseTokens } from '../../serve/tokens.ts';
import { num, out, untilSignal, type Command, type CommandValues } from './command.ts';
import { env } from './environment.ts';

const read = (path: string, flag: string) => {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new BatonError('invalid-config', `--${flag} ${path}: ${(err as Error).message}`);
  }
};

/** The server's options from the flags and the environment (tokens: --tokens FILE, else BATON_TOKENS). */
function serverFlags(v: CommandValues) {
  const tokens = v.tokens ? parseTokens(read(v.tokens as string, 'tokens').toString('utf8'), `--tokens ${v.tokens}`) : env.serveTokens ? parseTokens(env.serveTokens, 'BATON_TOKENS') : [];
  if ((v['tls-key'] === undefined) !== (v['tls-cert'] === undefined)) throw new BatonError('invalid-config', 'baton serve needs --tls-key and --tls-cert together');
  return {
    tokens,
    ...(v.host !== undefined ? { host: v.host as string } : {}),
    ...(v.port !== undefined ? { port: num(v.port, 'port')! } : {}),
    ...(v['tls-key'] !== undefined ? { tls: { key: read(v['tls-key'] as string, 'tls-key'), cert: read(v['tls-cert'] as string, 'tls-cert') } } : {}),
    ...(v.advertise !== undefined ? { advertiseUrl: v.advertise as string } : {}),
    ...(v['body-limit'] !== undefined ? { bodyLimit: num(v['body-limit'], 'body-limit')! } : {}),
    ...(v['idempotency-window'] !== undefined ? { idempotencyWindowMs: num(v['idempotency-window'], 'idempotency-window')! * 1000 } : {}),
    ...(v['idempotency-claim-timeout'] !== undefined ? { idempotencyClaimTimeoutMs: num(v['idempotency-claim-timeout'], 'idempotency-claim-timeout')! * 1000 } : {}),
  };
}

/** how long a stopping server waits for what it accepted to be applied, ms */
const SETTLE_MS = 30_000;

export const serve: Command = {
  summary: 'run the runtime as a service: HTTP API v1, the inspector and /metrics on one server',
  usage:
    'baton serve --devices FILE [--host 127.0.0.1] [--port 7443] [--tokens FILE] [--tls-key PEM --tls-cert PEM]\n' +
    '            [--advertise URL] [--namespace NS] [--runtime-id ID] [--body-limit BYTES] [--idempotency-window S]\n' +
    '            [--idempotency-claim-timeout S]\n' +
    '  --tokens FILE: one label:token a line (the audit records token:<label>); required beyond loopback\n' +
    '  --advertise URL: the base URL clients reach this server at (what a standby redirects them to)\n' +
    '  --idempotency-window S: how long an Idempotency-Key keeps its answer (default 86400)\n' +
    '  --idempotency-claim-timeout S: how long a key whose request never answered (its server died) answers 409\n' +
    '       before a retry takes it over and carries it out again (default 30; longer than any dispatch takes)\n' +
    '  env: BATON_TOKENS (instead of --tokens), BATON_SECRET or BATON_SECRET_FILE, BATON_AMQP_URL,\n' +
    '       BATON_DATABASE_URL, BATON_NAMESPACE, BATON_MANAGEMENT_URL, BATON_LOG_LEVEL',
  options: {
    devices: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    tokens: { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-cert': { type: 'string' },
    advertise: { type: 'string' },
    namespace: { type: 'string' },
    'runtime-id': { type: 'string' },
    'body-limit': { type: 'string' },
    'idempotency-window': { type: 'string' },
    'idempotency-claim-timeout': { type: 'string' },
  },
  async run(v) {
    if (!v.devices) throw new BatonError('invalid-config', 'baton serve needs --devices FILE (JSON: {"devices":[{"id":"fw1","url":"http://127.0.0.1:8181"}]})');
    const flags = serverFlags(v);
    const logger = cliLogger(env.logLevel, 'serve');
    let sink: ((e: InspectionEvent) => void) | null = null;
    const runtime = createRuntime({
      devices: loadDevicesFile(v.devices as string),
      ...(v.namespace ? { namespace: v.namespace as string } : {}),
      ...(v['runtime-id'] ? { runtimeId: v['runtime-id'] as string } : {}),
      logger,
      inspect: (e) => sink?.(e),
    });
    await runtime.start();
    const keys = await createOrmStore({ databaseUrl: env.databaseUrl ?? runtimeDefaults.databaseUrl, logger: logger.child({ actor: 'idempotency-keys' }), createDatabase: false, poolMax: 4 });
    const server = await startServer(runtime, { ...flags, keys, logger });
    sink = server.inspect;
    out(`baton serve listening on ${server.url} (API v1: ${server.url}v1/docs; inspector: ${server.url})`);
    const sig = await untilSignal();
    logger.info({ signal: sig }, 'stopping: refusing new requests, answering those in flight, then stopping the runtime');
    await server.close();
    // what was accepted is durable either way; the leader waits (bounded) until it is applied or dead-lettered
    await runtime.drained({ timeoutMs: SETTLE_MS }).then(
      () => logger.info('every accepted message is applied or dead-lettered'),
      (err: Error) => logger.warn({ err: err.message }, 'stopping with messages not yet applied: they stay queued (durable) and the next leader delivers them'),
    );
    await runtime.stop();
    await keys.close();
    out('baton serve stopped');
    return 0;
  },
};
