/**
 * The inspector's requests, whatever server carries them: the Host check against DNS rebinding
 * (loopback only), the token, the operator routes (./action-routes.ts) and the pages (the page, the
 * machines, the state, the devices, the alarms, /metrics, the /events stream). `createInspectorCore`
 * builds it from the inspector's options; ./plugin.ts mounts it on a fastify app (the inspector's own,
 * ./server.ts, or `baton serve`'s).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { InspectionEvent } from 'xstate';
import { systemClock } from '../clock.ts';
import { labelOf, requester, tokenList, tokenOf, type InspectorToken } from './access.ts';
import { serveAction } from './action-routes.ts';
import { createActorFeed, type ActorFeed } from './actor-feed.ts';
import { createEventStream, type EventStream } from './event-stream.ts';
import { inspectorPage } from './page.ts';
import { machines, toGraph } from './machine-export.ts';
import { loopbackHost } from './loopback.ts';
import type { InspectorServerOptions } from './options.ts';

const DEFAULT_EVENT_CLIENTS = 16;

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


/** The inspector's requests and its live parts (the feed of the charts, the /events stream). */
export interface InspectorCore {
  /** pass to xstate's `inspect` option */
  inspect(e: InspectionEvent): void;
  /** serves one request; `loopbackPort` is the bound port when bound to loopback (its Host is checked), else null */
  handle(req: IncomingMessage, res: ServerResponse, loopbackPort: number | null): Promise<void>;
  /** starts the status pushes of /events */
  start(): void;
  /** stops them and ends every /events client */
  stop(): void;
}

export function createInspectorCore(o: InspectorServerOptions): InspectorCore {
  const tokens = tokenList(o);
  const stream = createEventStream({ maxClients: o.maxEventClients ?? DEFAULT_EVENT_CLIENTS, status: () => o.status(), logger: o.logger, clock: o.clock ?? systemClock });
  const feed = createActorFeed(stream.broadcast);
  const sources: Sources = { o, graphs: JSON.stringify(Object.fromEntries(Object.entries(machines).map(([k, m]) => [k, toGraph(m)]))), feed, stream };

  async function handle(req: IncomingMessage, res: ServerResponse, loopbackPort: number | null): Promise<void> {
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
  return {
    inspect: (e) => feed.inspect(e),
    handle: (req, res, loopbackPort) =>
      handle(req, res, loopbackPort).catch((err) => {
        o.logger.warn({ err: (err as Error).message }, 'inspector request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      }),
    start: () => stream.start(),
    stop: () => stream.stop(),
  };
}
