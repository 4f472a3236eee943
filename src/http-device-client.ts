/**
 * The DeviceClient port over undici: a keep-alive pool per device, a deadline per request, the
 * baton headers, and the classification of every answer into applied / transient / permanent /
 * fenced (DESIGN.md §7).
 */
import { Pool } from 'undici';
import type { DeviceClient, DeviceConfig, DeviceOutcome, WireMessage } from './ports.ts';
import { messageId } from './wire.ts';

export interface HttpDeviceClientOptions {
  /** default per-request deadline, ms (a device's `timeoutMs` overrides it) */
  timeoutMs: number;
  /** bytes of a device's answer kept for dead letters and logs */
  maxResponseBytes?: number;
}

/** Reads at most `limit` bytes of a body and discards the rest. */
async function readBounded(body: AsyncIterable<Buffer> & { destroy?: () => void }, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    if (size < limit) chunks.push(chunk.subarray(0, limit - size));
    size += chunk.length;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return size > limit ? `${text}… (${size} bytes)` : text;
}

/** Classifies an HTTP answer; exported for the contract tests and the in-memory client. */
export function classify(status: number, headers: Record<string, string | string[] | undefined>, response: string): DeviceOutcome {
  if (status >= 200 && status < 300) return { kind: 'applied', status };
  if (status === 409 && headers['x-baton-fenced'] !== undefined) {
    return { kind: 'fenced', status, reason: `device refused a stale epoch: ${response.slice(0, 200)}` };
  }
  if (status === 429 || status >= 500) return { kind: 'transient', status, reason: `device answered ${status}` };
  return { kind: 'permanent', status, reason: `device answered ${status}`, response };
}

export function createHttpDeviceClient(opts: HttpDeviceClientOptions): DeviceClient {
  const pools = new Map<string, Pool>();
  const maxResponseBytes = opts.maxResponseBytes ?? 4096;

  function poolFor(device: DeviceConfig): { pool: Pool; base: string } {
    const url = new URL(device.url);
    let pool = pools.get(url.origin);
    if (!pool) {
      pool = new Pool(url.origin, { connections: 2, keepAliveTimeout: 30_000, pipelining: 1 });
      pools.set(url.origin, pool);
    }
    return { pool, base: url.pathname.replace(/\/$/, '') };
  }

  async function request(device: DeviceConfig, init: { method: string; path: string; headers: Record<string, string>; body?: string }) {
    const { pool, base } = poolFor(device);
    return pool.request({
      method: init.method as 'GET',
      path: base + init.path,
      headers: init.headers,
      body: init.body ?? null,
      signal: AbortSignal.timeout(device.timeoutMs ?? opts.timeoutMs),
    });
  }

  return {
    async send(device, m: WireMessage): Promise<DeviceOutcome> {
      let res;
      try {
        res = await request(device, {
          method: m.method,
          path: m.path,
          headers: {
            'content-type': 'application/json',
            'x-baton-seq': String(m.seq),
            'x-baton-epoch': String(m.epoch),
            'idempotency-key': m.key ? `${m.key}:${m.seq}` : messageId(m),
          },
          body: m.method === 'DELETE' && m.body === null ? undefined : JSON.stringify(m.body),
        });
      } catch (err) {
        const e = err as Error & { code?: string };
        const why = e.name === 'TimeoutError' || e.name === 'AbortError' ? 'timed out' : (e.code ?? e.message);
        return { kind: 'transient', status: null, reason: `device ${device.id} unreachable: ${why}` };
      }
      let text: string;
      try {
        text = await readBounded(res.body, maxResponseBytes);
      } catch (err) {
        return { kind: 'transient', status: res.statusCode, reason: `answer cut short: ${(err as Error).message}` };
      }
      return classify(res.statusCode, res.headers, text);
    },

    async watermark(device) {
      if (device.reportsWatermark === false) return null;
      try {
        const res = await request(device, { method: 'GET', path: '/watermark', headers: { accept: 'application/json' } });
        const text = await readBounded(res.body, 1024);
        if (res.statusCode !== 200) return null;
        const v = JSON.parse(text) as { watermark?: unknown };
        return Number.isSafeInteger(v.watermark) ? (v.watermark as number) : null;
      } catch {
        return null;
      }
    },

    async close() {
      await Promise.all([...pools.values()].map((p) => p.close().catch(() => {})));
      pools.clear();
    },
  };
}
