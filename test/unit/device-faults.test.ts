// Devices that misbehave on the wire, and TLS to devices: the undici client against real sockets.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { resolveAgentConfig } from '../../src/config.ts';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { createHttpDeviceClient } from '../../src/adapters/http-device-client.ts';
import type { DeviceConfig, WireMessage } from '../../src/ports.ts';
import { agentTrust } from '../support/trust.ts';

const m = (seq: number): WireMessage => ({ deviceId: 'd', seq, method: 'PUT', path: `/policies/p${seq}`, body: { seq } });
const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** An HTTP server whose every answer is `answer(res)`. */
async function device(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server: Server = createHttpServer(answer);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Sends one message with a fresh client (timeout 2 s) and closes it. */
async function sendTo(dev: DeviceConfig, msg = m(1), maxResponseBytes?: number) {
  const client = createHttpDeviceClient({ timeoutMs: 2000, ...(maxResponseBytes ? { maxResponseBytes } : {}) });
  try {
    return await client.send(dev, msg, 1);
  } finally {
    await client.close();
  }
}

describe('devices that misbehave', () => {
  it('429 Too Many Requests is transient: the line holds and retries', async () => {
    const url = await device((_req, res) => res.writeHead(429, { 'retry-after': '1' }).end('slow down'));
    expect(await sendTo({ id: 'd', url })).toMatchObject({ kind: 'transient', status: 429 });
  });

  it('an answer that is not HTTP is transient, and says so', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const server = createTcpServer((s) => {
      sockets.add(s);
      s.end('GARBAGE\r\n\r\nnot http at all');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    closers.push(() => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await sendTo({ id: 'd', url })).toMatchObject({ kind: 'transient', status: null, reason: expect.stringMatching(/device d unreachable: Response does not match the HTTP\/1\.1 protocol/) });
  });

  it('a 2xx with an endless body counts as applied at once (the body is not read to its end)', async () => {
    const url = await device((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    expect(await sendTo({ id: 'd', url })).toEqual({ kind: 'applied', status: 200 });
  });

  it('a refusal with a huge body keeps only maxResponseBytes of it, marked as cut', async () => {
    const url = await device((_req, res) => res.writeHead(400, { 'content-type': 'text/plain' }).end('E'.repeat(20 * 1024 * 1024)));
    const out = await sendTo({ id: 'd', url }, m(1), 1024);
    expect(out).toMatchObject({ kind: 'permanent', status: 400 });
    const response = (out as { response: string }).response;
    expect(response.length).toBeLessThan(1100);
    expect(response).toMatch(/^E{1024}… \(cut at 1024 bytes\)$/);
  });

  it('a watermark answer that is garbage is treated as "no watermark"', async () => {
    const url = await device((_req, res) => res.writeHead(200).end('{"watermark": "lots"'));
    const client = createHttpDeviceClient({ timeoutMs: 2000 });
    expect(await client.watermark({ id: 'd', url })).toBeNull();
    await client.close();
  });
});

describe('TLS to devices', () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-tls-'));
  const f = (name: string) => join(dir, name);
  const pem = (name: string) => readFileSync(f(name));
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  beforeAll(() => {
    // a CA, a server certificate for 127.0.0.1 signed by it, and a client certificate signed by it
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=baton test CA');
    writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n');
    for (const [who, ext] of [['server', ['-extfile', 'san.ext']], ['client', []]] as const) {
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=${who}`);
      openssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', ...ext);
    }
  }, 60_000);

  const sim = async (requireClientCert: boolean): Promise<DeviceSimulator> => {
    const s = await startDeviceSimulator({ tls: { key: pem('server.key'), cert: pem('server.pem'), ...(requireClientCert ? { ca: pem('ca.pem') } : {}) } });
    closers.push(() => s.close());
    return s;
  };

  it('verifies the device against the CA it is given', async () => {
    const s = await sim(false);
    expect(s.url).toMatch(/^https:/);
    expect(await sendTo({ id: 'd', url: s.url, tls: { ca: f('ca.pem') } })).toEqual({ kind: 'applied', status: 200 });
    expect(s.applied).toHaveLength(1);
  });

  it('refuses a certificate that does not verify, saying what to set; nothing reaches the device', async () => {
    const s = await sim(false);
    const out = await sendTo({ id: 'd', url: s.url });
    expect(out).toMatchObject({ kind: 'transient', status: null, reason: expect.stringMatching(/TLS certificate does not verify .*set tls\.ca .* or tls\.allowInvalidCertificate/) });
    expect(s.applied).toHaveLength(0);
  });

  it('accepts an unverifiable certificate only where the device allows it', async () => {
    const s = await sim(false);
    expect(await sendTo({ id: 'd', url: s.url, tls: { allowInvalidCertificate: true } })).toEqual({ kind: 'applied', status: 200 });
  });

  it('presents a client certificate to a device that requires one', async () => {
    const s = await sim(true);
    expect(await sendTo({ id: 'd', url: s.url, tls: { ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') } })).toEqual({ kind: 'applied', status: 200 });
    expect(await sendTo({ id: 'd', url: s.url, tls: { ca: f('ca.pem') } })).toMatchObject({ kind: 'transient', status: null });
    expect(s.applied).toHaveLength(1);
  });

  it('checks tls settings up front, naming the device and the field', () => {
    const agent = (tls: unknown, url = 'https://127.0.0.1:1') => () => resolveAgentConfig({ id: 'a1', devices: [{ id: 'fw1', url, tls }], ...agentTrust('a1') });
    expect(agent({ ca: f('ca.pem') }, 'http://127.0.0.1:1')).toThrow(/devices\[0\]\.tls is set but the url is not https/);
    expect(agent({ ca: f('nope.pem') })).toThrow(/devices\[0\]\.tls \.ca: no file .*nope\.pem/);
    expect(agent({ cert: f('client.pem') })).toThrow(/devices\[0\]\.tls needs cert and key together/);
    expect(agent({ verify: false })).toThrow(/devices\[0\]\.tls has unknown field "verify"/);
    expect(agent({ allowInvalidCertificate: 'yes' })).toThrow(/allowInvalidCertificate must be true or false/);
    expect(() => agent({ ca: f('ca.pem'), cert: f('client.pem'), key: f('client.key') })()).not.toThrow();
  });
});
