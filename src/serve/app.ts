/**
 * `baton serve`'s one fastify app over a Runtime: API v1 (./routes-*.ts, validated with the TypeBox
 * schemas of ./schemas.ts, described at /v1/openapi.json and /v1/docs), the inspector's page, stream,
 * /metrics and operator routes (its plugin, src/inspector/plugin.ts), one auth story (./access.ts for
 * /v1, the inspector's own checks, same tokens, for its pages), one error shape (./error-answers.ts),
 * a body limit. It does not listen: ./server.ts does (with TLS when asked); tests use `app.inject()`.
 */
import type { ServerResponse } from 'node:http';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import type { Runtime } from '../api.ts';
import { systemClock } from '../clock.ts';
import { BatonError, isBatonError } from '../errors.ts';
import { silentLogger } from '../logger.ts';
import type { Clock, IdempotencyStore } from '../ports.ts';
import type { InspectorToken } from '../inspector/access.ts';
import { inspectorFrameworkErrors, inspectorPlugin } from '../inspector/plugin.ts';
import { createInspectorCore } from '../inspector/requests.ts';
import { v1Access } from './access.ts';
import { answerError, errorBody } from './error-answers.ts';
import { Idempotency } from './idempotency.ts';
import { redirectToLeader } from './leader-redirect.ts';
import { docsPage, registerOpenApi } from './openapi.ts';
import { messageRoutes } from './routes-messages.ts';
import { actionRoutes, viewRoutes } from './routes-operator.ts';
import { eventRoutes } from './routes-events.ts';
import type { RuntimePorts } from './runtime-ports.ts';

export interface ServeAppOptions {
  /** the tokens, each with the label the audit records (`token:<label>`); none: loopback only (./server.ts checks) */
  tokens?: InspectorToken[];
  /** the largest request body, bytes (default 1 MiB) */
  bodyLimit?: number;
  /** where Idempotency-Keys are kept (the runtime's database: its IdempotencyStore role) */
  keys: IdempotencyStore;
  /** how long a key keeps its answer, ms (default 24 h) */
  idempotencyWindowMs?: number;
  /** how long a key claimed by a request that never answered (its server died) answers 409 before a retry takes it over, ms (default 30 s) */
  idempotencyClaimTimeoutMs?: number;
  /** the runtime's parts built on its side (fate, journal, leader's address); absent ones answer 501 */
  ports?: RuntimePorts;
  /** `/v1/events` and `/events` clients at once, each (default 16) */
  maxEventClients?: number;
  tls?: { key: string | Buffer; cert: string | Buffer };
  clock?: Clock;
  logger?: Logger;
  /** the bound port when listening on loopback (the Host is checked against it); default: none checked */
  loopbackPort?: () => number | null;
  /** true once the server stops (new requests are refused with 503 `stopping`) */
  stopping?: () => boolean;
  /** called with the app before any route is added: a host's own hooks (an onRoute watcher, a request log) */
  extend?: (app: FastifyInstance) => void;
}

export interface ServeApp {
  app: FastifyInstance;
  /** pass to the runtime's `inspect` option: the inspector's charts follow the runtime's actors */
  inspect(e: InspectionEvent): void;
  /** starts the periodic parts (key purges, the inspector's status pushes) */
  start(): void;
  /** stops them and ends every event stream */
  stop(): void;
}

const DEFAULT_BODY_LIMIT = 1024 * 1024;
const PROMETHEUS = 'text/plain; version=0.0.4; charset=utf-8';

export async function createServeApp(runtime: Runtime, o: ServeAppOptions): Promise<ServeApp> {
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? silentLogger();
  const loopbackPort = o.loopbackPort ?? (() => null);
  const tokens = o.tokens ?? [];
  const core = createInspectorCore({
    port: 0, tokens, clock, logger: logger.child({ actor: 'inspector' }), status: () => runtime.status(), devices: () => runtime.devices(), alarms: () => runtime.alarms(), actions: () => runtime,
    metrics: { text: () => runtime.metrics(), contentType: PROMETHEUS }, ...(o.maxEventClients !== undefined ? { maxEventClients: o.maxEventClients } : {}),
  });
  const mount = { core, loopbackPort };
  const toInspector = inspectorFrameworkErrors(mount);
  const app = Fastify({
    // fastify logs each request at info: kept out, its warnings and errors kept
    loggerInstance: logger.child({ actor: 'serve' }, { level: 'warn' }) as FastifyBaseLogger,
    bodyLimit: o.bodyLimit ?? DEFAULT_BODY_LIMIT,
    // while closing, a request on an open connection reaches v1Access, which answers `stopping` in the error shape
    return503OnClosing: false,
    // a device id in a path may be long (the schema allows 200); the router's default (100) would answer 404
    routerOptions: { maxParamLength: 1024 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', useDefaults: true } },
    frameworkErrors: (err, req, reply) => (req.url.startsWith('/v1/') ? void answerError(err, req, reply) : toInspector(err, req, reply)),
    ...(o.tls ? { https: { key: o.tls.key, cert: o.tls.cert } } : {}),
  }).withTypeProvider<TypeBoxTypeProvider>();
  const idempotency = new Idempotency({
    store: o.keys,
    clock,
    log: app.log,
    ...(o.idempotencyWindowMs !== undefined ? { windowMs: o.idempotencyWindowMs } : {}),
    ...(o.idempotencyClaimTimeoutMs !== undefined ? { claimTimeoutMs: o.idempotencyClaimTimeoutMs } : {}),
  });
  const streams = new Set<ServerResponse>();

  o.extend?.(app as unknown as FastifyInstance);
  app.setErrorHandler((err, req, reply) => (isBatonError(err, 'not-leader') ? redirectToLeader(err, req, reply, o.ports?.leader) : answerError(err, req, reply)));
  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody(new BatonError('not-found', `there is no ${req.method} ${req.url.split('?')[0]} here (GET /v1/docs lists the routes)`))));
  await registerOpenApi(app, '1');
  await app.register(inspectorPlugin, { ...mount, paths: 'pages' });
  await app.register(async (v1) => {
    v1.addHook('onRequest', v1Access({ tokens, loopbackPort, stopping: o.stopping ?? (() => false) }));
    await v1.register(messageRoutes, { runtime, idempotency, fates: o.ports?.fates, maxMessageBytes: o.bodyLimit ?? DEFAULT_BODY_LIMIT });
    await v1.register(viewRoutes, { runtime });
    await v1.register(actionRoutes, { runtime });
    await v1.register(eventRoutes(streams), { journal: o.ports?.journal, clock, maxClients: o.maxEventClients ?? 16, log: app.log });
    v1.get('/v1/openapi.json', { schema: { summary: 'this document (OpenAPI 3.1)', tags: ['meta'] } }, () => app.swagger());
    v1.get('/v1/docs', { schema: { summary: 'a short human page listing the routes', tags: ['meta'] } }, (_req, reply) =>
      reply.type('text/html; charset=utf-8').send(docsPage(app.swagger() as never)),
    );
  });
  await app.ready();
  return {
    app,
    inspect: (e) => core.inspect(e),
    start() {
      idempotency.start();
      core.start();
    },
    stop() {
      idempotency.stop();
      core.stop();
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}
