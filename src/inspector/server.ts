/**
 * The inspector server: the live page, the machine definitions, an SSE stream fed from xstate's
 * `inspect` option, and `/metrics`. Loopback by default; bound elsewhere it requires a token.
 *
 * Bound to loopback, it answers only requests whose Host is `localhost` or a loopback address with
 * its port: a page of another site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its
 * own name as Host and is refused. `/events` takes at most `maxEventClients` clients, and drops one
 * whose unsent bytes pass EVENT_BUFFER_LIMIT (it does not read), so a client costs bounded memory.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { BlockList, isIP, type AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { systemClock } from '../clock.ts';
import { BatonError } from '../errors.ts';
import { inspectorPage } from './page.ts';
import { machines, toGraph } from './machine-export.ts';
import type { Clock } from '../ports.ts';
import type { RuntimeStatus } from '../api.ts';

export interface InspectorOptions {
  port: number;
  /** default 127.0.0.1; any other address needs `token` */
  host?: string;
  token?: string;
  /** `/events` clients at once, at most (default 16); the next one is answered 503 */
  maxEventClients?: number;
}

/** Events too frequent to stream one by one (they still move the charts). */
const QUIET = new Set(['dispatch.message', 'agent.heartbeat', 'agent.probe']);

/** Bytes an `/events` client may leave unread in the server (beyond what the sockets hold) before it is dropped. */
export const EVENT_BUFFER_LIMIT = 1024 * 1024;
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

/**
 * The token of a request: the one in `Authorization: Bearer <token>` when that header carries one,
 * else the first `?token=`; an empty value counts as absent. So a query never overrides a header.
 */
function tokenOf(req: IncomingMessage, url: URL): string | null {
  const bearer = /^Bearer[ ]+(\S+)[ ]*$/i.exec(req.headers.authorization ?? '')?.[1];
  return bearer || url.searchParams.get('token') || null;
}

/** Compares in constant time, whatever the lengths (the digests have one length). */
const sameToken = (given: string, wanted: string) =>
  timingSafeEqual(createHash('sha256').update(given).digest(), createHash('sha256').update(wanted).digest());

/** Fails at configuration time, naming the option, when the inspector would be exposed without a token. */
export function checkInspectorOptions(o: InspectorOptions): void {
  if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.port" must be an integer 0..65535 (got ${JSON.stringify(o.port)})`);
  }
  if (o.maxEventClients !== undefined && (!Number.isSafeInteger(o.maxEventClients) || o.maxEventClients < 1)) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.maxEventClients" must be an integer >= 1 (got ${JSON.stringify(o.maxEventClients)})`);
  }
  if (!isLoopback(o.host ?? '127.0.0.1') && !o.token) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.token" is required when the inspector binds ${o.host} (not loopback)`);
  }
}

function safePayload(event: Record<string, unknown>): unknown {
  const { type: _t, ...rest } = event;
  if (Object.keys(rest).length === 0) return undefined;
  try {
    const text = JSON.stringify(rest);
    return text.length > 2000 ? { truncated: text.slice(0, 2000) } : JSON.parse(text);
  } catch {
    return { unserialisable: true };
  }
}

export interface InspectorServer {
  /** pass to xstate's `inspect` option */
  inspect(e: InspectionEvent): void;
  start(): Promise<string>;
  stop(): Promise<void>;
  url(): string | null;
}

export function createInspectorServer(
  o: InspectorOptions & {
    status(): Promise<RuntimeStatus>;
    /** the Prometheus text of /metrics and its content type */
    metrics: { text(): Promise<string>; readonly contentType: string };
    logger: Logger;
    /** times the status pushed to `/events` each second (default: the process clock) */
    clock?: Clock;
  },
): InspectorServer {
  checkInspectorOptions(o);
  const host = o.host ?? '127.0.0.1';
  const clock = o.clock ?? systemClock;
  const maxClients = o.maxEventClients ?? DEFAULT_EVENT_CLIENTS;
  const clients = new Set<ServerResponse>();
  const latest = new Map<string, { actor: string; machine: string; value: unknown }>();
  const graphs = JSON.stringify(Object.fromEntries(Object.entries(machines).map(([k, m]) => [k, toGraph(m)])));
  let statusTimer: { cancel(): void } | null = null;
  let address: string | null = null;
  /** set once listening on loopback: the port a request's Host must name */
  let loopbackPort: number | null = null;

  const nameOf = (ref: unknown): { actor: string; machine: string } | null => {
    const id = (ref as { systemId?: string } | undefined)?.systemId;
    if (!id) return null;
    if (id === 'coordinator' || id === 'dispatcher') return { actor: id, machine: id };
    if (id.startsWith('agent:')) return { actor: id, machine: 'agent' };
    return null;
  };

  /** Writes one event, or drops the client when what it left unread passed the limit. */
  const send = (res: ServerResponse, kind: string, data: unknown) => {
    if (res.destroyed) return;
    if (res.writableLength > EVENT_BUFFER_LIMIT) {
      clients.delete(res);
      o.logger.warn({ buffered: res.writableLength, limit: EVENT_BUFFER_LIMIT }, 'inspector dropped an /events client that does not read');
      res.destroy();
      return;
    }
    res.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = (kind: string, data: unknown) => {
    for (const c of clients) send(c, kind, data);
  };

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!o.token) return true;
    const given = tokenOf(req, url);
    return given !== null && sameToken(given, o.token);
  };

  async function pushStatus(): Promise<void> {
    if (clients.size === 0) return;
    try {
      broadcast('status', await o.status());
    } catch (err) {
      o.logger.debug({ err: (err as Error).message }, 'inspector status failed');
    }
  }
  const everySecond = () => {
    statusTimer = clock.setTimeout(() => {
      void pushStatus();
      everySecond();
    }, 1000);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (loopbackPort !== null && !loopbackHost(req.headers.host, loopbackPort)) {
      res.writeHead(421, { 'content-type': 'text/plain' });
      return void res.end(
        `this inspector listens on loopback and answers only Host localhost:${loopbackPort}, 127.0.0.1:${loopbackPort} or [::1]:${loopbackPort} ` +
          `(got ${JSON.stringify(req.headers.host ?? null)}): another name is what a DNS-rebinding page sends\n`,
      );
    }
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' });
      return void res.end('only GET is served here\n');
    }
    if (!authorized(req, url)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
      return void res.end('a token is required: Authorization: Bearer ... (or, without that header, ?token=...)\n');
    }
    switch (url.pathname) {
      case '/':
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'" });
        return void res.end(inspectorPage());
      case '/api/machines':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(graphs);
      case '/api/state':
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ actors: [...latest.values()], status: await o.status() }));
      case '/metrics': {
        await o.status(); // refreshes the gauges
        res.writeHead(200, { 'content-type': o.metrics.contentType });
        return void res.end(await o.metrics.text());
      }
      case '/events': {
        if (clients.size >= maxClients) {
          res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
          return void res.end(`${maxClients} /events clients are connected, the most this inspector serves: close one, or raise inspector.maxEventClients\n`);
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.write(': baton\n\n');
        for (const s of latest.values()) send(res, 'snapshot', s);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        // the newcomer's first status goes to it alone; the others get theirs each second
        o.status().then(
          (s) => clients.has(res) && send(res, 'status', s),
          (err: unknown) => o.logger.debug({ err: (err as Error).message }, 'inspector status failed'),
        );
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        return void res.end(`no such page: ${url.pathname} (try /, /events, /metrics, /api/machines, /api/state)\n`);
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      o.logger.warn({ err: (err as Error).message }, 'inspector request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });

  return {
    inspect(e) {
      if (e.type === '@xstate.snapshot') {
        const who = nameOf(e.actorRef);
        const value = (e.snapshot as { value?: unknown }).value;
        if (!who || value === undefined) return;
        const prev = latest.get(who.actor);
        if (prev && JSON.stringify(prev.value) === JSON.stringify(value)) return;
        const s = { ...who, value };
        latest.set(who.actor, s);
        broadcast('snapshot', s);
      } else if (e.type === '@xstate.event') {
        const who = nameOf(e.actorRef);
        const type = (e.event as { type: string }).type;
        if (!who || QUIET.has(type) || type === 'xstate.init') return;
        broadcast('event', { at: Date.now(), actor: who.actor, type, payload: safePayload(e.event as Record<string, unknown>) });
      }
    },
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o.port, host, () => resolve());
      });
      const { port, address: bound } = server.address() as AddressInfo;
      if (isLoopback(bound)) loopbackPort = port;
      address = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
      everySecond();
      return address;
    },
    url: () => address,
    async stop() {
      statusTimer?.cancel();
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
