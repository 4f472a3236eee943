// startServer over real HTTP on an ephemeral loopback port: the options refused at start (no token
// beyond loopback, half a TLS pair), and the graceful close: a request in flight is answered (its
// message accepted), new connections are refused, close() resolves once it is done; HTTPS with a key and certificate.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Runtime } from '../../src/api.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { startServer, type BatonServer } from '../../src/serve/server.ts';
import { runtimeDouble, stillClock } from '../support/serve-double.ts';

const servers: BatonServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path.slice(1), url), { method: 'POST', headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('startServer', () => {
  it('refuses, naming the option, a bind beyond loopback without tokens, bad tokens and half a TLS pair', async () => {
    const { runtime } = runtimeDouble();
    const keys = createMemoryStore();
    await expect(startServer(runtime, { keys, host: '0.0.0.0', port: 0 })).rejects.toThrow(/option "tokens" is required when the server binds 0\.0\.0\.0/);
    await expect(startServer(runtime, { keys, port: 0, tokens: [{ label: 'a b', token: 'x' }] })).rejects.toThrow(/label/);
    await expect(startServer(runtime, { keys, port: 0, tls: { key: 'k' } as never })).rejects.toThrow(/both key and cert/);
  });

  it('close(): the request in flight is answered (202), new connections are refused, then it resolves', async () => {
    const double = runtimeDouble();
    let release!: () => void;
    let entered!: () => void;
    const inDispatch = new Promise<void>((r) => (entered = r));
    const slow = { ...double.runtime, dispatch: async (m: never) => { entered(); await new Promise<void>((r) => (release = r)); return double.runtime.dispatch(m); } } as Runtime;
    const server = await startServer(slow, { keys: createMemoryStore(), port: 0, clock: stillClock });
    servers.push(server);
    const inFlight = post(server.url, '/v1/messages', { deviceId: 'fw1', method: 'PUT', path: '/p' });
    await inDispatch;
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await expect(post(server.url, '/v1/status', {})).rejects.toThrow(/ECONNREFUSED|ECONNRESET/); // not served: the listener is closed
    expect(closed).toBe(false);
    release();
    expect(await inFlight).toEqual({ status: 202, json: { deviceId: 'fw1', seq: 1 } });
    await closing;
    expect(double.dispatched).toHaveLength(1);
  });
});

describe('startServer with TLS', () => {
  it('serves HTTPS with the given key and certificate', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-serve-tls-'));
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
      const cert = readFileSync(join(dir, 'cert.pem'));
      const server = await startServer(runtimeDouble().runtime, { keys: createMemoryStore(), port: 0, clock: stillClock, tls: { key: readFileSync(join(dir, 'key.pem')), cert } });
      servers.push(server);
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/$/);
      const status = await new Promise<number>((resolve, reject) => {
        httpsRequest(new URL('v1/status', server.url), { ca: cert, agent: false }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end();
      });
      expect(status).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
