/**
 * The inspector server: the live page, the machine definitions, an SSE stream fed from xstate's
 * `inspect` option, `/metrics`, and the runtime's devices and open alarms (`/api/devices`, `/api/alarms`). Loopback by default; bound elsewhere it requires a token.
 *
 * Bound to loopback, it answers only requests whose Host is `localhost` or a loopback address with
 * its port: a page of another site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its
 * own name as Host and is refused. `/events` takes at most `maxEventClients` clients, and drops one
 * whose unsent bytes pass EVENT_BUFFER_LIMIT (it does not read), so a client costs bounded memory
 * (./event-stream.ts); what it streams of the statecharts comes from ./actor-feed.ts.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BlockList, isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { systemClock } from '../clock.ts';
import { BatonError } from '../errors.ts';
import { checkTokens, labelOf, requester, tokenList, tokenOf, type InspectorToken } from './access.ts';
import { serveAction, type OperatorApi } from './action-routes.ts';
import { createActorFeed, type ActorFeed } from './actor-feed.ts';
import { createEventStream, type EventStream } from './event-stream.ts';
import { inspectorPage } from './page.ts';
import { machines, toGraph } from './machine-export.ts';
import type { Clock } from '../ports.ts';
import type { Alarm, DeviceView, RuntimeStatus } from '../api.ts';

export interface InspectorOptions {
  port: number;
  /** default 127.0.0.1; any other address needs `token` (or `tokens`) */
  host?: string;
  /** the one token (the audit names its holder `token:token`) */
  token?: string;
  /** several tokens, each with the label the audit names its holder by (`token:<label>`) */
  tokens?: InspectorToken[];
  /** `/events` clients at once, at most (default 16); the next one is answered 503 */
  maxEventClients?: number;
}

export { EVENT_BUFFER_LIMIT } from './event-stream.ts';
const DEFAULT_EVENT_CLIENTS = 16;

const loopbackNets = new BlockList();
loopbackNets.addSubnet('127.0.0.0', 8, 'ipv4');
loopbackNets.addAddress('::1', 'ipv6'); // and ::ffff:127.x.y.z, which BlockList checks against the IPv4 rule

/** `localhost`, or an IP address literal in 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104; never a name that merely starts like one. */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  return family !== 0 && loopbackNets.check(host, family === 6 ? 'ipv6' : 'ipv4');
}

/** Whether a request's Host names this loopback server: `localhost` or a loopback address, with its port. */
function loopbackHost(header: string | undefined, port: number): boolean {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d+)$/.exec(header ?? '');
  return m !== null && Number(m[3]) === port && isLoopback((m[1] ?? m[2])!);
}

/** Fails at configuration time, naming the option, when the inspector would be exposed without a token. */
export function checkInspectorOptions(o: InspectorOptions): void {
  if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.port" must be an integer 0..65535 (got ${JSON.stringify(o.port)})`);
  }
  if (o.maxEventClients !== undefined && (!Number.isSafeInteger(o.maxEventClients) || o.maxEventClients < 1)) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.maxEventClients" must be an integer >= 1 (got ${JSON.stringify(o.maxEventClients)})`);
  }
  checkTokens(o);
  if (!isLoopback(o.host ?? '127.0.0.1') && tokenList(o).length === 0) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.token" is required when the inspector binds ${o.host} (not loopback)`);
  }
}

export interface InspectorServer {
  /** pass to xstate's `inspect` option */
  inspect(e: InspectionEvent): void;
  start(): Promise<string>;
  stop(): Promise<void>;
  url(): string | null;
}

export type InspectorServerOptions = InspectorOptions & {
  status(): Promise<RuntimeStatus>;
  /** `/api/devices`: the runtime's per-device view (absent: the page answers 404) */
  devices?(): Promise<DeviceView[]>;
  /** the runtime's operator actions, served under /api/ (./action-routes.ts); absent: none is served */
  actions?(): OperatorApi;
  /** `/api/alarms`: the runtime's open alarms (absent: the page answers 404) */
  alarms?(): Alarm[];
  /** the Prometheus text of /metrics and its content type */
  metrics: { text(): Promise<string>; readonly contentType: string };
  logger: Logger;
  /** times the status pushed to `/events` each second (default: the process clock) */
  clock?: Clock;
};

/**
 * Answers a request that does not name this loopback server as its Host (421): another name is what a
 * DNS-rebinding page sends. `loopbackPort` is null when the server is not bound to loopback.
 */
function refuseForeignHost(req: IncomingMessage, res: ServerResponse, loopbackPort: number | null): boolean {
  if (loopbackPort === null || loopbackHost(req.headers.host, loopbackPort)) return false;
  res.writeHead(421, { 'content-type': 'text/plain' });
  res.end(
    `this inspector listens on loopback and answers only Host localhost:${loopbackPort}, 127.0.0.1:${loopbackPort} or [::1]:${loopbackPort} ` +
      `(got ${JSON.stringify(req.headers.host ?? null)}): another name is what a DNS-rebinding page sends\n`,
  );
  return true;
}

/**
 * Answers a request that is neither a GET nor a POST (405), or lacks a token when one is set (401);
 * else gives the label of the token it carries (null: none is set).
 */
function admit(req: IncomingMessage, res: ServerResponse, url: URL, tokens: InspectorToken[]): { label: string | null } | null {
  if (req.method !== 'GET' && req.method !== 'POST') {
    res.writeHead(405, { allow: 'GET, POST', 'content-type': 'text/plain' });
    res.end('only GET (and POST for the actions under /api/) is served here\n');
    return null;
  }
  if (tokens.length === 0) return { label: null };
  const label = labelOf(tokenOf(req, url), tokens);
  if (label !== null) return { label };
  res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
  res.end('a token is required: Authorization: Bearer ... (or, without that header, ?token=...)\n');
  return null;
}

/** What the pages serve: the runtime's status and metrics, the charts' definitions and live state. */
interface Sources {
  o: InspectorServerOptions;
  /** `/api/machines`, serialised once */
  graphs: string;
  feed: ActorFeed;
  stream: EventStream;
}

/** Serves one GET that passed the checks. */
async function route(req: IncomingMessage, res: ServerResponse, url: URL, { o, graphs, feed, stream }: Sources): Promise<void> {
  switch (url.pathname) {
    case '/':
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" });
      return void res.end(inspectorPage());
    case '/api/machines':
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(graphs);
    case '/api/state':
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ actors: [...feed.latest()], status: await o.status() }));
    case '/api/devices':
      if (!o.devices) break;
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(await o.devices()));
    case '/api/alarms':
      if (!o.alarms) break;
      res.writeHead(200, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify(o.alarms()));
    case '/metrics': {
      await o.status(); // refreshes the gauges
      res.writeHead(200, { 'content-type': o.metrics.contentType });
      return void res.end(await o.metrics.text());
    }
    case '/events':
      return stream.open(req, res, feed.latest());
  }
  res.writeHead(404, { 'content-type': 'text/plain' });
  res.end(`no such page: ${url.pathname} (try /, /events, /metrics, /api/machines, /api/state${o.devices ? ', /api/devices' : ''}${o.alarms ? ', /api/alarms' : ''}${o.actions ? ', /api/dead-letters, /api/audit' : ''})\n`);
}

export function createInspectorServer(o: InspectorServerOptions): InspectorServer {
  checkInspectorOptions(o);
  const host = o.host ?? '127.0.0.1';
  const tokens = tokenList(o);
  const stream = createEventStream({ maxClients: o.maxEventClients ?? DEFAULT_EVENT_CLIENTS, status: () => o.status(), logger: o.logger, clock: o.clock ?? systemClock });
  const feed = createActorFeed(stream.broadcast);
  const sources: Sources = { o, graphs: JSON.stringify(Object.fromEntries(Object.entries(machines).map(([k, m]) => [k, toGraph(m)]))), feed, stream };
  let address: string | null = null;
  /** set once listening on loopback: the port a request's Host must name */
  let loopbackPort: number | null = null;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (refuseForeignHost(req, res, loopbackPort)) return;
    const url = new URL(req.url ?? '/', 'http://inspector');
    const caller = admit(req, res, url, tokens);
    if (!caller) return;
    if (o.actions && (await serveAction(req, res, url, requester(req, caller.label), o.actions(), o.logger))) return;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' });
      return void res.end(`only GET is served at ${url.pathname}\n`);
    }
    await route(req, res, url, sources);
  }
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      o.logger.warn({ err: (err as Error).message }, 'inspector request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });

  return {
    inspect: (e) => feed.inspect(e),
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, host, () => resolve());
      });
      const { port, address: bound } = server.address() as AddressInfo;
      if (isLoopback(bound)) loopbackPort = port;
      address = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
      stream.start();
      return address;
    },
    url: () => address,
    async stop() {
      stream.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
