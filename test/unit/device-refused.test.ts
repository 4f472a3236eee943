// Issue 13, items 1, 5, 6 on the agent's side, with the real undici client over loopback sockets:
// a request that cannot go out is permanent (dead-lettered, the line goes on by policy) and never
// costs a connection slot; a 2xx counts once its status line is in, however slowly its body comes;
// a path never leaves the device's base path.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { DeviceLanes } from '../../src/agent/device-lanes.ts';
import { startDeviceSimulator } from '../../src/devices/simulator.ts';
import { createHttpDeviceClient } from '../../src/adapters/http-device-client.ts';
import { silentLogger } from '../../src/logger.ts';
import type { DeadLetter, DeviceClient, DeviceConfig, WireMessage } from '../../src/ports.ts';
import { encodeMessage } from '../../src/wire.ts';

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});
const client = (timeoutMs = 2000) => {
  const c = createHttpDeviceClient({ timeoutMs });
  closers.push(() => c.close());
  return c;
};
const simulator = async () => {
  const s = await startDeviceSimulator();
  closers.push(() => s.close());
  return s;
};
/** An HTTP server that records each request's target and answers with `answer`. */
async function recorder(answer: (req: IncomingMessage, res: ServerResponse) => void = (_q, res) => res.writeHead(200).end('{}')) {
  const targets: string[] = [];
  const server = createServer((req, res) => {
    targets.push(req.url ?? '');
    answer(req, res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => {
    server.closeAllConnections();
    return new Promise((r) => server.close(r));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, targets };
}
const msg = (seq: number, path: string, extra: Partial<WireMessage> = {}): WireMessage => ({ deviceId: 'd', seq, method: 'PUT', path, body: { seq }, ...extra });

/** Requests that cannot go out: what dispatch() now refuses (arriving from the broker anyway), and one only undici refuses. */
const refusable: Array<[string, Partial<WireMessage> & { path: string }, RegExp]> = [
  ['a space in the path', { path: '/policies/a b' }, /path holds U\+0020/],
  ['CR/LF in the path', { path: '/policies/p\r\nX-Evil: 1' }, /path holds U\+000D/],
  ['NUL in the path', { path: '/policies/p\u0000' }, /path holds U\+0000/],
  ['a character above U+00FF in the path', { path: '/policies/\u0100' }, /path holds U\+0100/],
  ['a dot segment', { path: '/../admin/x' }, /path has a "\." or "\.\." segment/],
  ['CR/LF in the key', { path: '/policies/p1', key: 'k\r\nX-Evil: 1' }, /key holds U\+000D/],
  ['a character above U+00FF in the key', { path: '/policies/p1', key: 'k\u0100' }, /key holds U\+0100/],
  // not a method baton sends: only undici refuses it, which forces its own refusal path
  ['a method undici refuses', { path: '/policies/p1', method: 'PU T' as WireMessage['method'] }, /HTTP client refused the request before sending it \(invalid request method\)/],
];

describe('requests that cannot go out', () => {
  it.each(refusable)('%s is permanent, with the reason, and nothing reaches the device', async (_, extra, reason) => {
    const dev = await recorder();
    const out = await client().send({ id: 'd', url: dev.url }, msg(1, extra.path, extra), 1);
    expect(out).toMatchObject({ kind: 'permanent', status: null, reason: expect.stringMatching(reason) });
    expect(out.kind === 'permanent' && out.reason).toMatch(/not sent/);
    expect(dev.targets).toEqual([]);
  });

  it('100 refused requests to one device leak no connection slot: a valid request and GET /watermark still complete', { timeout: 10_000 }, async () => {
    const sim = await simulator();
    const c = client(1000);
    const dev: DeviceConfig = { id: 'd', url: sim.url };
    const kinds = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const [, extra] = refusable[i % refusable.length]!;
      kinds.add((await c.send(dev, msg(i + 1, extra.path, extra), 1)).kind);
    }
    // with a leaked slot per refusal these never complete (nor does their deadline fire)
    expect(await c.send(dev, msg(101, '/policies/p1'), 1)).toEqual({ kind: 'applied', status: 200 });
    expect(await c.watermark(dev)).toBe(101);
    expect([...kinds]).toEqual(['permanent']);
  });

  it('the agent dead-letters such a message with the reason and its line goes on (onPermanent=skip), or blocks (block)', { timeout: 10_000 }, async () => {
    for (const onPermanent of ['skip', 'block'] as const) {
      const sim = await simulator();
      const devices = new Map([['d', { id: 'd', url: sim.url }]]);
      const dead: DeadLetter[] = [];
      const applied: number[] = [];
      const lanes = new DeviceLanes({
        agentId: 'a1', devices, client: client(1000), clock: systemClock, logger: silentLogger(), onPermanent,
        retryInitialMs: 1, retryMaxMs: 4, lease: { acquire: async () => 1 },
        applied: (_d, seq) => void applied.push(seq), deadLetter: async (e) => void dead.push(e), fenced: () => {},
      });
      const retries: unknown[] = [];
      lanes.on('retry', (r) => retries.push(r));
      // seq 2 is refused by undici itself (forced: a method baton never sends)
      const messages = [msg(1, '/policies/a b'), msg(2, '/policies/p2', { method: 'PU T' as WireMessage['method'] }), msg(3, '/policies/p3')];
      const deliveries = messages.map((m) => ({ message: m, raw: encodeMessage(m), redelivered: false, ack() {}, nack() {} }));
      const settled = onPermanent === 'skip' ? once(lanes, 'applied') : once(lanes, 'blocked');
      for (const d of deliveries) lanes.accept(d);
      await settled;
      const refusedBoth = [
        { deviceId: 'd', seq: 1, status: null, reason: expect.stringMatching(/not sent: message\.path holds U\+0020/) },
        { deviceId: 'd', seq: 2, status: null, reason: expect.stringMatching(/HTTP client refused the request before sending it/) },
      ];
      expect(dead).toMatchObject(onPermanent === 'skip' ? refusedBoth : refusedBoth.slice(0, 1));
      expect(retries).toEqual([]);
      expect(applied).toEqual(onPermanent === 'skip' ? [3] : []);
      expect(sim.applied.map((e) => e.seq)).toEqual(onPermanent === 'skip' ? [3] : []);
      await lanes.stop();
    }
  });
});

describe('a path stays under the device base path', () => {
  it.each(['/../admin/x', '/policies/../../admin', '/%2e%2e/admin', '/policies/x%2f..%2fadmin'])('%s is not sent', async (path) => {
    const dev = await recorder();
    const c = client();
    expect(await c.send({ id: 'd', url: `${dev.url}/api` }, msg(1, path), 1)).toMatchObject({ kind: 'permanent', status: null });
    expect(await c.send({ id: 'd', url: `${dev.url}/api` }, msg(2, '/policies/p1'), 1)).toMatchObject({ kind: 'applied' });
    expect(dev.targets).toEqual(['/api/policies/p1']);
  });
});

describe('a 2xx is applied once its status line arrives', () => {
  it('a body that dribbles past the deadline does not turn it into a retry', async () => {
    const dribbles = new Set<NodeJS.Timeout>();
    closers.push(() => dribbles.forEach(clearInterval));
    const dev = await recorder((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"ok":');
      // a byte every 50 ms, never ending: reading it would outlast the 200 ms deadline
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 50);
      dribbles.add(t);
    });
    const c = client(200);
    const dev1 = { id: 'd', url: dev.url };
    expect(await c.send(dev1, msg(1, '/policies/p1'), 1)).toEqual({ kind: 'applied', status: 200 });
    expect(dev.targets).toEqual(['/policies/p1']);
  });
});
