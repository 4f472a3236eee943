/**
 * The DeviceClient port over undici: a keep-alive pool per device, a deadline per request, the
 * baton headers, and the classification of every answer into applied / transient / permanent /
 * fenced (DESIGN.md §7).
 *
 * A request that cannot go out (a path or key the wire cannot carry, a path that would leave the
 * device's base path) is permanent and never handed to undici: undici 7 refuses it, and its pool
 * then counts the connection it never used as busy, so two refusals leave the device's pool
 * waiting forever (even its deadlines do not fire). Should undici refuse a request anyway, the
 * answer is the same, and that device's pool is replaced.
 */
import { classify } from '../device-answers.ts';
import { readFileSync } from 'node:fs';
import { Pool, type Dispatcher } from 'undici';
import type { DeviceClient, DeviceConfig, DeviceOutcome, WireMessage } from '../ports.ts';
import { keyProblem, KEY_RULE, messageId, PATH_RULE, pathProblem } from '../wire.ts';

export interface HttpDeviceClientOptions {
  /** default per-request deadline, ms (a device's `timeoutMs` overrides it) */
  timeoutMs: number;
  /** bytes of a device's answer kept for dead letters and logs */
  maxResponseBytes?: number;
}

/** Reads at most `limit` bytes of a body; past that it stops reading (the connection is dropped),
 * so a huge or endless answer costs neither memory nor time. */
async function readBounded(body: AsyncIterable<Buffer> & { destroy?: (err?: Error) => unknown }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
    if (size > limit) {
      body.destroy?.();
      return `${Buffer.concat(chunks).toString('utf8')}… (cut at ${limit} bytes)`;
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** TLS errors from Node that mean "this certificate does not verify". */
const CERT_ERRORS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME/;

/** Why a request failed, for logs and status: certificate problems say what to do. */
function unreachable(device: DeviceConfig, err: Error & { code?: string }): string {
  if (err.name === 'TimeoutError' || err.name === 'AbortError') return `device ${device.id} unreachable: timed out`;
  const code = err.code ?? err.message;
  if (CERT_ERRORS.test(code)) return `device ${device.id} refused: its TLS certificate does not verify (${code}); set tls.ca to the CA that signed it, or tls.allowInvalidCertificate for this device`;
  return `device ${device.id} unreachable: ${code}`;
}

/** Why `m` cannot be sent (what undici would refuse, or a path leaving the base path), or null. */
function unsendable(m: WireMessage): string | null {
  const path = pathProblem(m.path);
  if (path) return `message.path ${path}; it must be ${PATH_RULE}`;
  const key = m.key === undefined ? null : keyProblem(m.key);
  if (key) return `message.key ${key}; it must be ${KEY_RULE}`;
  return null;
}

const refused = (reason: string): DeviceOutcome => ({ kind: 'permanent', status: null, reason, response: null });

/** The TLS options of a device's connections, its files read; undefined for plain http. */
function tlsConnect(device: DeviceConfig) {
  const t = device.tls;
  if (!t) return undefined;
  return {
    ...(t.ca ? { ca: readFileSync(t.ca) } : {}),
    ...(t.cert && t.key ? { cert: readFileSync(t.cert), key: readFileSync(t.key) } : {}),
    rejectUnauthorized: t.allowInvalidCertificate !== true,
  };
}

interface RequestInit {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A keep-alive pool per device, made on its first request; a request within the device's deadline. */
function devicePools(defaultTimeoutMs: number) {
  const pools = new Map<string, Pool>();

  function poolFor(device: DeviceConfig): { pool: Pool; base: string } {
    const url = new URL(device.url);
    let pool = pools.get(device.id);
    if (!pool) {
      const connect = tlsConnect(device);
      pool = new Pool(url.origin, { connections: 2, keepAliveTimeout: 30_000, pipelining: 1, ...(connect ? { connect } : {}) });
      pools.set(device.id, pool);
    }
    return { pool, base: url.pathname.replace(/\/$/, '') };
  }

  return {
    request(device: DeviceConfig, init: RequestInit) {
      const { pool, base } = poolFor(device);
      return pool.request({
        method: init.method as 'GET',
        path: base + init.path,
        headers: init.headers,
        body: init.body ?? null,
        signal: AbortSignal.timeout(device.timeoutMs ?? defaultTimeoutMs),
      });
    },
    /** Drops a device's pool undici may hold jammed (see the header); the next request gets a fresh one. */
    replace(device: DeviceConfig): void {
      const pool = pools.get(device.id);
      pools.delete(device.id);
      void pool?.destroy().catch(() => {});
    },
    async closeAll(): Promise<void> {
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
      pools.clear();
    },
  };
}

type Pools = ReturnType<typeof devicePools>;

/** The request that writes `m` under the lease's `epoch`, with the baton headers. */
function writeRequest(m: WireMessage, epoch: number): RequestInit {
  return {
    method: m.method,
    path: m.path,
    headers: {
      'content-type': 'application/json',
      'x-baton-seq': String(m.seq),
      'x-baton-epoch': String(epoch),
      'idempotency-key': m.key ? `${m.key}:${m.seq}` : messageId(m),
    },
    body: m.method === 'DELETE' && m.body === null ? undefined : JSON.stringify(m.body),
  };
}

/** The outcome of a device's answer: applied on a 2xx, else what its status and body say. */
async function outcomeOf(res: Dispatcher.ResponseData, maxResponseBytes: number): Promise<DeviceOutcome> {
  if (res.statusCode >= 200 && res.statusCode < 300) {
    // applied once the status line is in: the body is drained in the background (at most
    // maxResponseBytes, within the request's deadline) so the connection can be reused, and
    // however slowly it comes it never turns the answer into a retry
    void res.body.dump({ limit: maxResponseBytes }).catch(() => {});
    return { kind: 'applied', status: res.statusCode };
  }
  let text: string;
  try {
    text = await readBounded(res.body, maxResponseBytes);
  } catch (err) {
    return { kind: 'transient', status: res.statusCode, reason: `answer cut short: ${(err as Error).message}` };
  }
  return classify(res.statusCode, res.headers, text);
}

async function send(pools: Pools, maxResponseBytes: number, device: DeviceConfig, m: WireMessage, epoch: number): Promise<DeviceOutcome> {
  const bad = unsendable(m);
  if (bad) return refused(`not sent: ${bad}`);
  let res;
  try {
    res = await pools.request(device, writeRequest(m, epoch));
  } catch (err) {
    if ((err as { code?: string }).code === 'UND_ERR_INVALID_ARG') {
      pools.replace(device);
      return refused(`device ${device.id}: the HTTP client refused the request before sending it (${(err as Error).message}); not sent`);
    }
    return { kind: 'transient', status: null, reason: unreachable(device, err as Error) };
  }
  return outcomeOf(res, maxResponseBytes);
}

/** The device's `GET /watermark`; null when it does not report one or the answer is not one. */
async function watermark(pools: Pools, device: DeviceConfig): Promise<number | null> {
  if (device.reportsWatermark === false) return null;
  try {
    const res = await pools.request(device, { method: 'GET', path: '/watermark', headers: { accept: 'application/json' } });
    const text = await readBounded(res.body, 1024);
    if (res.statusCode !== 200) return null;
    const v = JSON.parse(text) as { watermark?: unknown };
    return Number.isSafeInteger(v.watermark) ? (v.watermark as number) : null;
  } catch {
    return null;
  }
}

export function createHttpDeviceClient(opts: HttpDeviceClientOptions): DeviceClient {
  const pools = devicePools(opts.timeoutMs);
  const maxResponseBytes = opts.maxResponseBytes ?? 4096;
  return {
    send: (device, m, epoch) => send(pools, maxResponseBytes, device, m, epoch),
    watermark: (device) => watermark(pools, device),
    close: () => pools.closeAll(),
  };
}
