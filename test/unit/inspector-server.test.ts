// The inspector server over real HTTP on an ephemeral loopback port, in-process: the Host check
// against DNS rebinding, the exact loopback test, the one token rule, the /events limits (a cap
// on clients, a client that does not read is dropped, a new client gets the status alone), and the
// open alarms (/api/alarms, the red bar the page draws from each status push).
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { checkInspectorOptions, createInspectorServer, EVENT_BUFFER_LIMIT, type InspectorOptions, type InspectorServer, type InspectorServerOptions } from '../../src/inspector/server.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import type { Clock } from '../../src/ports.ts';
import type { Alarm, RuntimeStatus } from '../../src/api.ts';
import { inspectorPage } from '../../src/inspector/page.ts';
import { captureLogs } from '../support/log-capture.ts';
import { readSse } from '../support/sse.ts';

/** A clock whose timers never fire: no periodic status push interleaves with what a test counts. */
const still: Clock = { now: () => Date.now(), monotonic: () => performance.now(), setTimeout: () => ({ cancel() {} }) };

const servers: InspectorServer[] = [];
const sockets: Array<{ destroy(): void }> = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const s of servers.splice(0)) await s.stop();
});

async function serve(o: Partial<InspectorOptions> & Pick<InspectorServerOptions, 'alarms'> = {}) {
  const logs = captureLogs();
  let statusCalls = 0;
  const server = createInspectorServer({
    port: 0,
    clock: still,
    status: async () => ({ call: ++statusCalls }) as unknown as RuntimeStatus,
    metrics: new Metrics(),
    logger: logs.logger,
    ...o,
  });
  const url = await server.start();
  servers.push(server);
  return { server, url, port: Number(new URL(url).port), logs, statusCalls: () => statusCalls };
}

/** One request; the answer's status and body (an /events answer that is 200 is not read to its end). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      if (res.headers['content-type'] === 'text/event-stream') {
        sockets.push(res.socket);
        return resolve({ status: res.statusCode!, body });
      }
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

interface SseEvent {
  kind: string;
  data: unknown;
}

/** An /events client that reads everything: its events, and a wait for the first one that matches. */
function listen(port: number, headers: Record<string, string> = {}): Promise<{ events: SseEvent[]; until(p: (e: SseEvent) => boolean): Promise<SseEvent>; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path: '/events', headers, agent: false }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`/events answered ${res.statusCode}`));
      sockets.push(res.socket);
      const events: SseEvent[] = [];
      const got = new EventEmitter();
      readSse(res, ({ event: kind, data }) => {
        if (kind && data !== undefined) {
          const e = { kind, data: JSON.parse(data) as unknown };
          events.push(e);
          got.emit('event', e);
        }
      });
      const until = (p: (e: SseEvent) => boolean) =>
        new Promise<SseEvent>((done, fail) => {
          const seen = events.find(p);
          if (seen) return done(seen);
          const on = (e: SseEvent) => p(e) && (got.off('event', on), done(e));
          got.on('event', on);
          res.once('close', () => fail(new Error('the /events stream closed')));
        });
      resolve({ events, until, close: () => res.socket.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** An event the inspector streams (from the coordinator), carrying `blob`. */
const event = (n: number, blob = ''): InspectionEvent =>
  ({ type: '@xstate.event', actorRef: { systemId: 'coordinator' }, event: { type: 'test.blob', n, blob } }) as unknown as InspectionEvent;

describe('inspector: Host check on loopback (DNS rebinding)', () => {
  it('answers a loopback Host with the bound port, and refuses any other Host with 421 and the reason', async () => {
    const { port } = await serve();
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LocalHost:${port}`, `[::1]:${port}`]) {
      expect((await get(port, '/api/machines', { host })).status, host).toBe(200);
    }
    for (const host of [`attacker.example:${port}`, `127.attacker.example:${port}`, `localhost.attacker.example:${port}`, `localhost:${port + 1}`, 'localhost', `127.0.0.1:${port}.evil`]) {
      for (const path of ['/', '/api/state', '/metrics', '/events']) {
        const r = await get(port, path, { host });
        expect(r.status, `${host} ${path}`).toBe(421);
        expect(r.body).toMatch(/Host/);
        expect(r.body).toContain(`localhost:${port}`);
      }
    }
  });

  it('checks no Host when bound beyond loopback: the token guards it there', async () => {
    const { port } = await serve({ host: '0.0.0.0', token: 's3cret' });
    expect((await get(port, '/api/machines', { host: `baton.example:${port}`, authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await get(port, '/api/machines', { host: `baton.example:${port}` })).status).toBe(401);
  });
});

describe('inspector: the loopback test is exact', () => {
  it.each(['127.attacker.example', '127.0.0.1.nip.io', '0.0.0.0', '::', '128.0.0.1', '::ffff:10.0.0.1', '::2', '10.0.0.1'])('%s is not loopback: a token is required', (host) => {
    expect(() => checkInspectorOptions({ port: 0, host })).toThrow(/option "inspector.token" is required/);
  });

  it.each(['127.0.0.1', '127.1.2.3', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1', 'localhost'])('%s is loopback: no token needed', (host) => {
    expect(() => checkInspectorOptions({ port: 0, host })).not.toThrow();
  });
});

describe('inspector: one token rule (the Authorization header when it has a token, else ?token=; empty counts as absent)', () => {
  it.each([
    ['a valid Bearer header and an empty ?token=', '/api/machines?token=', 'Bearer s3cret', 200],
    ['a valid Bearer header and a wrong ?token=', '/api/machines?token=wrong', 'Bearer s3cret', 200],
    ['a wrong Bearer header and a valid ?token=', '/api/machines?token=s3cret', 'Bearer wrong', 401],
    ['an empty Bearer header and a valid ?token=', '/api/machines?token=s3cret', 'Bearer ', 200],
    ['a lower-case bearer scheme', '/api/machines', 'bearer s3cret', 200],
    ['an empty ?token= alone', '/api/machines?token=', undefined, 401],
    ['no token', '/api/machines', undefined, 401],
    ['a valid ?token= alone', '/api/machines?token=s3cret', undefined, 200],
    ['a token that is a prefix of the real one', '/api/machines?token=s3', undefined, 401],
  ])('%s', async (_what, path, authorization, status) => {
    const { port } = await serve({ token: 's3cret' });
    expect((await get(port, path, authorization === undefined ? {} : { authorization })).status).toBe(status);
  });
});

describe('inspector: /events limits', () => {
  it('refuses the client past the cap (16 by default) with 503 and the option to raise it; a freed place is taken again', async () => {
    const { port } = await serve();
    const open = [];
    for (let i = 0; i < 16; i++) open.push(await listen(port));
    const refused = await get(port, '/events');
    expect(refused.status).toBe(503);
    expect(refused.body).toMatch(/16 \/events clients.*inspector\.maxEventClients/s);
    // the others still stream
    expect((await get(port, '/api/machines')).status).toBe(200);
    open[0]!.close();
    // the server hears the close in its own time: ask again (each attempt is a real request) until the place is free
    let again = 503;
    for (let i = 0; i < 200 && again === 503; i++) again = (await get(port, '/events')).status;
    expect(again).toBe(200);
  });

  it('takes its cap from inspector.maxEventClients, and refuses a bad one naming the option', async () => {
    const { port } = await serve({ maxEventClients: 1 });
    await listen(port);
    expect((await get(port, '/events')).status).toBe(503);
    expect(() => checkInspectorOptions({ port: 0, maxEventClients: 0 })).toThrow(/option "inspector.maxEventClients" must be an integer >= 1/);
  });

  it('drops a client that never reads once its unsent bytes pass the limit; the reading client gets every event', async () => {
    const { server, port, logs } = await serve();
    const reader = await listen(port);
    // a client that reads the first bytes, then nothing: the kernel's buffers fill, then the server's
    const slow = connect(port, '127.0.0.1');
    sockets.push(slow);
    slow.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
    await new Promise((resolve) => slow.once('data', resolve));
    slow.pause();

    const blob = 'x'.repeat(1500);
    const dropped = () => logs.records().find((r) => r.msg === 'inspector dropped an /events client that does not read');
    const most = 40_000; // about 64 MB for each client: far past any socket buffer
    let sent = 0;
    while (sent < most && !dropped()) {
      server.inspect(event(sent++, blob));
      if (sent % 20 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    const record = dropped();
    expect(record, `the slow client was still held after ${sent} events`).toBeDefined();
    expect(record!.buffered as number).toBeGreaterThan(EVENT_BUFFER_LIMIT);
    expect(record!.buffered as number).toBeLessThanOrEqual(EVENT_BUFFER_LIMIT + 4096);
    // the reader was not dropped and saw every event, in order
    server.inspect(event(-1));
    await reader.until((e) => (e.data as { payload?: { n?: number } }).payload?.n === -1);
    const seen = reader.events.filter((e) => e.kind === 'event').map((e) => (e.data as { payload: { n: number } }).payload.n);
    expect(seen).toEqual([...Array.from({ length: sent }, (_, i) => i), -1]);
  });

  it('a new client gets the status; the clients already there do not get it again', async () => {
    const { server, port, statusCalls } = await serve();
    const a = await listen(port);
    await a.until((e) => e.kind === 'status');
    const b = await listen(port);
    await b.until((e) => e.kind === 'status');
    // a marker after b's status: whatever the server sent a before it, a has read once it arrives
    server.inspect(event(7));
    await a.until((e) => e.kind === 'event');
    expect(statusCalls()).toBe(2);
    expect(a.events.filter((e) => e.kind === 'status')).toEqual([{ kind: 'status', data: { call: 1 } }]);
    expect(b.events.filter((e) => e.kind === 'status')).toEqual([{ kind: 'status', data: { call: 2 } }]);
  });
});

describe('inspector: the open alarms', () => {
  const alarm: Alarm = { id: 'device-blocked:fw1', kind: 'device-blocked', subject: 'fw1', text: 'device fw1: its line is blocked at seq 2 <b>', since: Date.UTC(2026, 11, 3, 6, 0, 5) };

  it('/api/alarms serves the runtime\'s alarms() as JSON, behind the token when one is set; without them it is not a page', async () => {
    let open: Alarm[] = [alarm];
    const { port } = await serve({ token: 's3cret', alarms: () => open });
    expect((await get(port, '/api/alarms')).status).toBe(401);
    const res = await get(port, '/api/alarms', { authorization: 'Bearer s3cret' });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual([alarm]);
    open = [];
    expect(JSON.parse((await get(port, '/api/alarms', { authorization: 'Bearer s3cret' })).body)).toEqual([]);
    const bare = await serve();
    const missing = await get(bare.port, '/api/alarms');
    expect(missing.status).toBe(404);
    expect(missing.body).not.toContain('/api/alarms)');
    expect((await get(port, '/nowhere', { authorization: 'Bearer s3cret' })).body).toContain(', /api/alarms)');
  });

  it('the page shows the open alarms in a red bar at the top from each status push, escaped, and hides it when none is open', () => {
    const page = inspectorPage();
    expect(page.indexOf('<div id="alarms"')).toBeLessThan(page.indexOf('<header>'));
    const script = /<script>([\s\S]*)<\/script>/.exec(page)![1]!;
    expect(script).toMatch(/function setStatus\(s\) \{\n  setAlarms\(s\.alarms \|\| \[\]\);/);
    const esc = /^const esc = .*$/m.exec(script)![0];
    const setAlarmsSource = /^function setAlarms\(list\) \{[\s\S]*?^\}$/m.exec(script)![0];
    const bar = { hidden: true, firstElementChild: { innerHTML: '' } };
    const setAlarms = new Function('$', `${esc}\n${setAlarmsSource}\nreturn setAlarms;`)(() => bar) as (list: Alarm[]) => void;
    setAlarms([alarm]);
    expect(bar.hidden).toBe(false);
    expect(bar.firstElementChild.innerHTML).toBe('<li data-alarm="device-blocked:fw1"><b>device-blocked</b>device fw1: its line is blocked at seq 2 &lt;b&gt;<span class="since">since 06:00:05</span></li>');
    setAlarms([]);
    expect(bar.hidden).toBe(true);
  });
});
