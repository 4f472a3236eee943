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
 * - `GET /watermark` answers the highest seq applied; `/_sim/*` reads the log and sets faults
 *   (latency, transient errors, hangs, and `refuse`: the next N writes refused for good, then accepted).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { DeviceModel, type AppliedEntry } from './model.ts';

export type { AppliedEntry };

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
  /**
   * refuse the next `count` config writes with `status`, a 4xx the agent takes as permanent (not 429,
   * which is transient), then accept writes again: a device an operator fixed. With `match`, only
   * writes whose path contains it are refused (and counted), e.g. `/rules/` for leaves nothing depends on
   */
  refuse?: { status: number; count: number; match?: string };
}

/** The refusal fault, checked: a malformed one would make the device answer nonsense. Throws saying what is wrong. */
function refusalOf(r: DeviceFaults['refuse']): { status: number; left: number; match?: string } | null {
  if (r === undefined) return null;
  const { status, count, match } = (r ?? {}) as { status?: unknown; count?: unknown; match?: unknown };
  if (!Number.isSafeInteger(status) || (status as number) < 400 || (status as number) > 499 || status === 429) {
    throw new Error(`refuse.status must be a 4xx other than 429 (the agent takes 429 as transient), got ${JSON.stringify(status)}`);
  }
  if (!Number.isSafeInteger(count) || (count as number) < 1) throw new Error(`refuse.count must be a whole number of writes, 1 or more, got ${JSON.stringify(count)}`);
  if (match !== undefined && (typeof match !== 'string' || match === '')) throw new Error(`refuse.match must be a non-empty part of a path, got ${JSON.stringify(match)}`);
  return { status: status as number, left: count as number, ...(match !== undefined ? { match } : {}) };
}

export interface DeviceSimulatorOptions {
  port?: number;
  host?: string;
  faults?: DeviceFaults;
  /** random source for `errorRate` (seeded in deterministic runs) */
  random?: () => number;
  /** largest request body accepted, bytes (default 2 MiB) */
  maxBodyBytes?: number;
  /** refuse writes from a lower epoch than one seen (default true); false: a device that accepts anything */
  fencing?: boolean;
  /** serve https with this key and certificate (PEM); with `ca`, require a client certificate signed by it */
  tls?: { key: string | Buffer; cert: string | Buffer; ca?: string | Buffer };
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
  events: DeviceModel['events'];
  close(): Promise<void>;
}

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

/** The simulator's live state, which its handlers share. */
interface SimState {
  model: DeviceModel;
  maxBody: number;
  faults: DeviceFaults;
  /** config writes held open by `hang`: dropped when the faults change and at close */
  hung: Set<ServerResponse>;
}

/** Replaces the faults in force (`{}` clears them all); throws, changing nothing, when `refuse` is malformed. */
function setFaults(sim: SimState, f: DeviceFaults): void {
  const refusing = refusalOf(f.refuse);
  sim.faults = { ...f };
  sim.model.refusing = refusing;
  sim.model.errorRate = f.errorRate ?? 0;
  sim.model.errorStatus = f.errorStatus ?? 503;
  for (const r of sim.hung) r.destroy();
  sim.hung.clear();
}

/** `GET /watermark` and the `/_sim/*` endpoints: the applied log, the resources, the faults. */
async function control(sim: SimState, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const { model } = sim;
  if (req.method === 'GET' && path === '/watermark') return send(res, 200, { watermark: model.watermark, epoch: model.maxEpoch });
  if (req.method === 'GET' && path === '/_sim/log') return send(res, 200, { applied: model.applied, fencedWrites: model.fencedWrites });
  if (req.method === 'GET' && path === '/_sim/resources') return send(res, 200, Object.fromEntries(model.resources));
  if (req.method === 'POST' && path === '/_sim/faults') {
    const text = await readBody(req, 64 * 1024);
    let faults: DeviceFaults;
    try {
      faults = JSON.parse(text ?? '{}') as DeviceFaults;
      if (typeof faults !== 'object' || faults === null || Array.isArray(faults)) throw new Error('not an object');
    } catch {
      return send(res, 400, { error: 'faults must be a JSON object; the faults in force are unchanged' });
    }
    try {
      setFaults(sim, faults);
    } catch (err) {
      return send(res, 400, { error: `${(err as Error).message}; the faults in force are unchanged` });
    }
    return send(res, 200, sim.faults);
  }
  return send(res, 404, { error: `no such endpoint: ${req.method} ${path}` });
}

/** The seq and epoch headers: absent is null; anything but a plain non-negative integer is refused (a NaN epoch would turn the fence off). */
function batonNumbers(req: IncomingMessage): { seq: number | null; epoch: number | null } | { error: string } {
  const numbers: Record<string, number | null> = {};
  for (const name of ['x-baton-seq', 'x-baton-epoch']) {
    const v = req.headers[name];
    const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN;
    if (v !== undefined && !Number.isSafeInteger(n)) return { error: `${name} must be a non-negative integer, got ${JSON.stringify(v)}` };
    numbers[name] = v === undefined ? null : n;
  }
  return { seq: numbers['x-baton-seq'] ?? null, epoch: numbers['x-baton-epoch'] ?? null };
}

/** A config write (PUT, POST, PATCH, DELETE), after the faults in force, handed to the model. */
async function write(sim: SimState, req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
  const text = await readBody(req, sim.maxBody);
  if (text === null) return send(res, 413, { error: `body over ${sim.maxBody} bytes` });
  if (sim.faults.hang) {
    sim.hung.add(res);
    return;
  }
  if (sim.faults.latencyMs) await new Promise((r) => setTimeout(r, sim.faults.latencyMs));
  let body: unknown = undefined;
  if (text.length > 0) {
    try {
      body = JSON.parse(text);
    } catch {
      return send(res, 400, { error: 'body is not JSON' });
    }
  }
  const numbers = batonNumbers(req);
  if ('error' in numbers) return send(res, 400, { error: numbers.error });
  const answer = sim.model.write(req.method!, path, numbers.seq, numbers.epoch, body);
  send(res, answer.status, answer.body, answer.headers);
}

/** An http server, or https (with `ca`: requiring a client certificate it signed), listening. */
async function listen(sim: SimState, opts: DeviceSimulatorOptions): Promise<Server> {
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://device').pathname;
    const handler = req.method === 'GET' || path.startsWith('/_sim/') ? control : write;
    handler(sim, req, res, path).catch((err) => send(res, 500, { error: (err as Error).message }));
  };
  const t = opts.tls;
  const server = t ? createHttpsServer({ key: t.key, cert: t.cert, ...(t.ca ? { ca: t.ca, requestCert: true, rejectUnauthorized: true } : {}) }, handle) : createServer(handle);
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => resolve());
  });
  return server;
}

export async function startDeviceSimulator(opts: DeviceSimulatorOptions = {}): Promise<DeviceSimulator> {
  const model = new DeviceModel({ ...(opts.random ? { random: opts.random } : {}), ...(opts.fencing === false ? { fencing: false } : {}) });
  const sim: SimState = { model, maxBody: opts.maxBodyBytes ?? 2 * 1024 * 1024, faults: {}, hung: new Set() };
  setFaults(sim, opts.faults ?? {});
  const server = await listen(sim, opts);
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${opts.host ?? '127.0.0.1'}:${port}`,
    port,
    applied: model.applied,
    get fencedWrites() {
      return model.fencedWrites;
    },
    setFaults: (f) => setFaults(sim, f),
    events: model.events,
    async close() {
      for (const r of sim.hung) r.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
