/**
 * The inspector server: the live page, the machine definitions, an SSE stream fed from xstate's
 * `inspect` option, and `/metrics`. Loopback by default; bound elsewhere it requires a token.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { InspectionEvent } from 'xstate';
import { BatonError } from './errors.ts';
import { inspectorPage } from './inspector-page.ts';
import { machines, toGraph } from './machine-export.ts';
import type { Metrics } from './metrics.ts';
import type { RuntimeStatus } from './runtime.ts';

export interface InspectorOptions {
  port: number;
  /** default 127.0.0.1; any other address needs `token` */
  host?: string;
  token?: string;
}

/** Events too frequent to stream one by one (they still move the charts). */
const QUIET = new Set(['dispatch.message', 'agent.heartbeat', 'agent.probe']);

const isLoopback = (host: string) => host === 'localhost' || host === '::1' || host.startsWith('127.');

/** Fails at configuration time, naming the option, when the inspector would be exposed without a token. */
export function checkInspectorOptions(o: InspectorOptions): void {
  if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.port" must be an integer 0..65535 (got ${JSON.stringify(o.port)})`);
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

export function createInspectorServer(o: InspectorOptions & { status(): Promise<RuntimeStatus>; metrics: Metrics; logger: Logger }): InspectorServer {
  checkInspectorOptions(o);
  const host = o.host ?? '127.0.0.1';
  const clients = new Set<ServerResponse>();
  const latest = new Map<string, { actor: string; machine: string; value: unknown }>();
  const graphs = JSON.stringify(Object.fromEntries(Object.entries(machines).map(([k, m]) => [k, toGraph(m)])));
  let statusTimer: NodeJS.Timeout | null = null;
  let address: string | null = null;

  const nameOf = (ref: unknown): { actor: string; machine: string } | null => {
    const id = (ref as { systemId?: string } | undefined)?.systemId;
    if (!id) return null;
    if (id === 'coordinator' || id === 'dispatcher') return { actor: id, machine: id };
    if (id.startsWith('agent:')) return { actor: id, machine: 'agent' };
    return null;
  };

  const send = (res: ServerResponse, kind: string, data: unknown) => res.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
  const broadcast = (kind: string, data: unknown) => {
    for (const c of clients) send(c, kind, data);
  };

  const authorized = (req: IncomingMessage, url: URL): boolean => {
    if (!o.token) return true;
    const given = url.searchParams.get('token') ?? (req.headers.authorization ?? '').replace(/^Bearer /, '');
    const a = Buffer.from(given);
    const b = Buffer.from(o.token);
    return a.length === b.length && timingSafeEqual(a, b);
  };

  async function pushStatus(): Promise<void> {
    if (clients.size === 0) return;
    try {
      broadcast('status', await o.status());
    } catch (err) {
      o.logger.debug({ err: (err as Error).message }, 'inspector status failed');
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://inspector');
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET', 'content-type': 'text/plain' });
      return void res.end('only GET is served here\n');
    }
    if (!authorized(req, url)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' });
      return void res.end('a token is required: ?token=... or Authorization: Bearer ...\n');
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
        res.writeHead(200, { 'content-type': o.metrics.registry.contentType });
        return void res.end(await o.metrics.text());
      }
      case '/events': {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.write(': baton\n\n');
        for (const s of latest.values()) send(res, 'snapshot', s);
        clients.add(res);
        req.on('close', () => clients.delete(res));
        void pushStatus();
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
      const { port } = server.address() as AddressInfo;
      address = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
      statusTimer = setInterval(() => void pushStatus(), 1000);
      return address;
    },
    url: () => address,
    async stop() {
      if (statusTimer) clearInterval(statusTimer);
      for (const c of clients) c.end();
      clients.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
