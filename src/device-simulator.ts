/**
 * The bundled device simulator: an HTTP server that behaves like a network device's config API.
 *
 * - Resources live at paths of `/kind/id` pairs; a child (`/policies/p1/rules/r1`) needs its
 *   parent (`/policies/p1`): without it the device answers 422, the very failure the patent
 *   exists to prevent.
 * - PUT creates or replaces, POST creates (409 if it exists), PATCH merges (404 if missing),
 *   DELETE removes (404 if missing, 409 while it has children).
 * - Every accepted write is appended to the applied log with its seq and epoch.
 * - A write from a lower epoch than one seen is refused: 409 with `X-Baton-Fenced`.
 * - `GET /watermark` answers the highest seq applied; `/_sim/*` reads the log and sets faults.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One write the device accepted. */
export interface AppliedEntry {
  seq: number | null;
  epoch: number | null;
  method: string;
  path: string;
  at: number;
}

/** Faults that can be injected, at start or live through `POST /_sim/faults`. */
export interface DeviceFaults {
  /** added to every config write, ms */
  latencyMs?: number;
  /** share of config writes answered with `errorStatus` (0..1) */
  errorRate?: number;
  /** status of injected errors (default 503) */
  errorStatus?: number;
  /** never answer config writes (the connection stays open) */
  hang?: boolean;
}

export interface DeviceSimulatorOptions {
  port?: number;
  host?: string;
  faults?: DeviceFaults;
  /** random source for `errorRate` (seeded in deterministic runs) */
  random?: () => number;
  /** largest request body accepted, bytes (default 2 MiB) */
  maxBodyBytes?: number;
}

export interface DeviceSimulator {
  url: string;
  port: number;
  /** every write accepted, in order */
  readonly applied: readonly AppliedEntry[];
  /** writes refused for a stale epoch */
  readonly fencedWrites: number;
  setFaults(faults: DeviceFaults): void;
  /** emits `applied` (AppliedEntry) and `refused` ({ status, path, reason }) */
  events: EventEmitter;
  close(): Promise<void>;
}

const parentOf = (path: string): string | null => {
  const parts = path.split('/').filter(Boolean);
  return parts.length > 2 ? '/' + parts.slice(0, -2).join('/') : null;
};

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > limit) return null;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function startDeviceSimulator(opts: DeviceSimulatorOptions = {}): Promise<DeviceSimulator> {
  const resources = new Map<string, unknown>();
  const applied: AppliedEntry[] = [];
  const events = new EventEmitter();
  const random = opts.random ?? Math.random;
  const maxBody = opts.maxBodyBytes ?? 2 * 1024 * 1024;
  let faults: DeviceFaults = { ...opts.faults };
  let maxEpoch = 0;
  let watermark = 0;
  let fencedWrites = 0;
  const hung = new Set<ServerResponse>();

  const refuse = (res: ServerResponse, status: number, path: string, reason: string, headers: Record<string, string> = {}) => {
    events.emit('refused', { status, path, reason });
    send(res, status, { error: reason }, headers);
  };

  async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === 'GET' && path === '/watermark') return send(res, 200, { watermark, epoch: maxEpoch });
    if (req.method === 'GET' && path === '/_sim/log') return send(res, 200, { applied, fencedWrites });
    if (req.method === 'GET' && path === '/_sim/resources') return send(res, 200, Object.fromEntries(resources));
    if (req.method === 'POST' && path === '/_sim/faults') {
      const text = await readBody(req, 64 * 1024);
      try {
        faults = JSON.parse(text ?? '{}') as DeviceFaults;
      } catch {
        return send(res, 400, { error: 'faults must be a JSON object' });
      }
      for (const r of hung) r.destroy();
      hung.clear();
      return send(res, 200, faults);
    }
    return send(res, 404, { error: `no such endpoint: ${req.method} ${path}` });
  }

  async function write(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    const text = await readBody(req, maxBody);
    if (text === null) return refuse(res, 413, path, `body over ${maxBody} bytes`);
    if (faults.hang) {
      hung.add(res);
      return;
    }
    if (faults.latencyMs) await new Promise((r) => setTimeout(r, faults.latencyMs));
    if (faults.errorRate && random() < faults.errorRate) {
      return refuse(res, faults.errorStatus ?? 503, path, 'injected fault');
    }
    const seq = req.headers['x-baton-seq'] ? Number(req.headers['x-baton-seq']) : null;
    const epoch = req.headers['x-baton-epoch'] ? Number(req.headers['x-baton-epoch']) : null;
    if (epoch !== null) {
      if (epoch < maxEpoch) {
        fencedWrites++;
        return refuse(res, 409, path, `epoch ${epoch} is below ${maxEpoch}`, { 'x-baton-fenced': 'true' });
      }
      maxEpoch = epoch;
    }
    let body: unknown = null;
    if (text.length > 0) {
      try {
        body = JSON.parse(text);
      } catch {
        return refuse(res, 400, path, 'body is not JSON');
      }
    }
    const parts = path.split('/').filter(Boolean);
    if (parts.length === 0 || parts.length % 2 !== 0) return refuse(res, 404, path, 'not a resource path (/kind/id[/kind/id...])');
    const parent = parentOf(path);
    const exists = resources.has(path);
    switch (req.method) {
      case 'PUT':
      case 'POST':
        if (parent && !resources.has(parent)) return refuse(res, 422, path, `parent ${parent} does not exist`);
        if (req.method === 'POST' && exists) return refuse(res, 409, path, 'already exists');
        resources.set(path, body);
        break;
      case 'PATCH':
        if (!exists) return refuse(res, 404, path, 'does not exist');
        resources.set(path, { ...(resources.get(path) as object), ...(body as object) });
        break;
      case 'DELETE':
        if (!exists) return refuse(res, 404, path, 'does not exist');
        for (const k of resources.keys()) {
          if (k.startsWith(path + '/')) return refuse(res, 409, path, `has children (${k})`);
        }
        resources.delete(path);
        break;
      default:
        return refuse(res, 405, path, `method ${req.method} not allowed`);
    }
    const entry: AppliedEntry = { seq, epoch, method: req.method!, path, at: Date.now() };
    applied.push(entry);
    if (seq !== null && seq > watermark) watermark = seq;
    events.emit('applied', entry);
    send(res, req.method === 'POST' ? 201 : 200, { ok: true, seq });
  }

  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://device').pathname;
    const handler = req.method === 'GET' || path.startsWith('/_sim/') ? control : write;
    handler(req, res, path).catch((err) => send(res, 500, { error: (err as Error).message }));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    applied,
    get fencedWrites() {
      return fencedWrites;
    },
    setFaults(f) {
      faults = { ...f };
      for (const r of hung) r.destroy();
      hung.clear();
    },
    events,
    async close() {
      for (const r of hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
