// The inspector's operator API over real HTTP on a loopback port, against a recording fake of the
// runtime's actions: the routes and their arguments, who the audit says asked (token labels, the
// client's X-Baton-By), the write protection (a POST must be JSON; the token when one is set), and
// errors answered as { error: { code, message } } with a status chosen by the code.
import type { IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { ActionResult } from '../../src/api.ts';
import { BatonError } from '../../src/errors.ts';
import { requester } from '../../src/inspector/access.ts';
import type { OperatorApi } from '../../src/inspector/action-routes.ts';
import { checkInspectorOptions, createInspectorServer, type InspectorOptions, type InspectorServer } from '../../src/inspector/server.ts';
import { Metrics } from '../../src/runtime/metrics.ts';
import type { Clock } from '../../src/ports.ts';
import { captureLogs } from '../support/log-capture.ts';

const still: Clock = { now: () => Date.now(), monotonic: () => performance.now(), setTimeout: () => ({ cancel() {} }) };
const servers: InspectorServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

const result = (action: ActionResult['action'], target: string): ActionResult => ({ action, target, outcome: 'done', detail: `${action} ${target}`, auditId: 1 });

/** A fake runtime: each action records its arguments, and throws `fail` when set. */
function fakeApi() {
  const calls: Array<[string, ...unknown[]]> = [];
  let fail: Error | null = null;
  const rec = <T>(name: string, value: T) => async (...args: unknown[]) => {
    calls.push([name, ...args]);
    if (fail) throw fail;
    return value;
  };
  const api: OperatorApi = {
    pause: rec('pause', result('pause', 'fw1')),
    resume: rec('resume', result('resume', 'fw1')),
    unblock: rec('unblock', result('unblock-retry', 'fw1')),
    deadLetters: rec('deadLetters', []),
    deadLetter: rec('deadLetter', null),
    resendDeadLetter: rec('resendDeadLetter', { ...result('dead-letter-resend', 'dead-letter:7'), seq: 12 }),
    dropDeadLetter: rec('dropDeadLetter', result('dead-letter-drop', 'dead-letter:7')),
    handover: rec('handover', result('handover', 'a2')),
    drained: rec('drained', undefined),
    audit: rec('audit', []),
  };
  return { api, calls, failWith: (e: Error | null) => (fail = e) };
}

async function serve(o: Partial<InspectorOptions> = {}) {
  const fake = fakeApi();
  const server = createInspectorServer({ port: 0, clock: still, status: async () => ({}) as never, actions: () => fake.api, metrics: new Metrics(), logger: captureLogs().logger, ...o });
  const base = await server.start();
  servers.push(server);
  const call = async (method: string, path: string, opts: { body?: string; headers?: Record<string, string> } = {}) => {
    const res = await fetch(new URL(path.slice(1), base), { method, headers: opts.headers ?? {}, ...(opts.body !== undefined ? { body: opts.body } : {}) });
    const text = await res.text();
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      // a text answer (401 and the pages' own)
    }
    return { status: res.status, json: json as Record<string, unknown> & { error?: { code: string; message: string } }, text };
  };
  const post = (path: string, body: unknown = {}, headers: Record<string, string> = {}) => call('POST', path, { body: JSON.stringify(body), headers: { 'content-type': 'application/json', ...headers } });
  return { ...fake, call, post };
}

describe('inspector actions: routes', () => {
  it('each POST route calls its action with its arguments and answers the result as JSON', async () => {
    const s = await serve();
    expect((await s.post('/api/devices/fw1/pause')).json).toEqual(result('pause', 'fw1'));
    await s.post('/api/devices/fw%201/resume');
    await s.post('/api/devices/fw1/unblock', { action: 'skip' });
    expect((await s.post('/api/dead-letters/7/resend')).json).toMatchObject({ seq: 12 });
    await s.post('/api/dead-letters/7/drop', { reason: 'not needed' });
    await s.post('/api/handover', { to: 'a2' });
    await s.post('/api/handover');
    expect((await s.post('/api/wait', { deviceId: 'fw1', timeoutMs: 5000 })).json).toEqual({ drained: true, deviceId: 'fw1' });
    expect(s.calls).toEqual([
      ['pause', 'fw1', { by: 'inspector' }],
      ['resume', 'fw 1', { by: 'inspector' }],
      ['unblock', 'fw1', { action: 'skip', by: 'inspector' }],
      ['resendDeadLetter', 7, { by: 'inspector' }],
      ['dropDeadLetter', 7, { reason: 'not needed', by: 'inspector' }],
      ['handover', { to: 'a2', by: 'inspector' }],
      ['handover', { by: 'inspector' }],
      ['drained', { deviceId: 'fw1', timeoutMs: 5000 }],
    ]);
  });

  it('GET routes: the dead letters with their filters, one by id (404 when there is none), the audit', async () => {
    const s = await serve();
    expect((await s.call('GET', '/api/dead-letters?device=fw1&reason=422&open=true&limit=5')).json).toEqual([]);
    await s.call('GET', '/api/dead-letters?open=false');
    const none = await s.call('GET', '/api/dead-letters/9');
    expect(none.status).toBe(404);
    expect(none.json.error!.code).toBe('unknown-dead-letter');
    await s.call('GET', '/api/audit?limit=3');
    expect(s.calls).toEqual([['deadLetters', { deviceId: 'fw1', reason: '422', open: true, limit: 5 }], ['deadLetters', { open: false }], ['deadLetter', 9], ['audit', { limit: 3 }]]);
  });
});

describe('inspector actions: write protection', () => {
  it('a POST without Content-Type: application/json is refused (415) and nothing is done: a cross-site form cannot drive it', async () => {
    const s = await serve();
    for (const headers of [{} as Record<string, string>, { 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-type': 'multipart/form-data; boundary=x' }]) {
      const r = await s.call('POST', '/api/devices/fw1/pause', { body: '{}', headers });
      expect(r.status, JSON.stringify(headers)).toBe(415);
      expect(r.json.error).toEqual({ code: 'invalid-request', message: 'an action must be sent with Content-Type: application/json (what a browser form cannot send); nothing was done' });
    }
    expect((await s.call('POST', '/api/devices/fw1/pause', { body: '{}', headers: { 'content-type': 'Application/JSON; charset=utf-8' } })).status).toBe(200);
    expect(s.calls).toHaveLength(1);
    // no preflight is answered: a cross-site script is stopped by the browser
    expect((await s.call('OPTIONS', '/api/devices/fw1/pause')).status).toBe(405);
  });

  it('with tokens set: none or a wrong one is refused (401); the right one names its label in `by`, with the client\'s word after it', async () => {
    const s = await serve({ token: 's3cret', tokens: [{ label: 'noc', token: 'n0c-token' }] });
    expect((await s.post('/api/devices/fw1/pause')).status).toBe(401);
    expect((await s.post('/api/devices/fw1/pause', {}, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await s.call('GET', '/api/audit')).status).toBe(401);
    expect(s.calls).toEqual([]);
    await s.post('/api/devices/fw1/pause', {}, { authorization: 'Bearer n0c-token' });
    await s.post('/api/devices/fw1/pause', {}, { authorization: 'Bearer n0c-token', 'x-baton-by': 'cli:bob' });
    await s.post('/api/devices/fw1/pause', {}, { authorization: 'Bearer s3cret' });
    await s.post('/api/devices/fw1/pause?token=n0c-token', {});
    expect(s.calls.map((c) => (c[2] as { by: string }).by)).toEqual(['token:noc', 'token:noc (cli:bob)', 'token:token', 'token:noc']);
  });

  it('without a token (loopback) the client\'s X-Baton-By alone, cut to 64 characters and made printable; `inspector` when it says nothing', async () => {
    const s = await serve();
    await s.post('/api/devices/fw1/pause', {}, { 'x-baton-by': 'cli:alice' });
    await s.post('/api/devices/fw1/pause', {}, { 'x-baton-by': `cli:${'x'.repeat(100)}` });
    await s.post('/api/devices/fw1/pause', {}, { 'x-baton-by': '   ' });
    expect(s.calls.map((c) => (c[2] as { by: string }).by)).toEqual(['cli:alice', `cli:${'x'.repeat(60)}`, 'inspector']);
    // what an HTTP client refuses to send, a raw one can (Node reads header bytes as latin1): a C1 CSI
    const req = (by: string) => ({ headers: { 'x-baton-by': by } }) as unknown as IncomingMessage;
    expect(requester(req('cli:\u009b2Jmallory'), null)).toBe('cli:\\u009b2Jmallory');
    expect(requester(req('cli:\u009b2J'), 'noc')).toBe('token:noc (cli:\\u009b2J)');
  });
});

describe('inspector actions: errors', () => {
  it('a BatonError answers { error: { code, message } } with the status of its code; anything else 500', async () => {
    const s = await serve();
    const cases: Array<[BatonError | Error, number, string]> = [
      [new BatonError('unknown-device', 'device "x" is not configured'), 404, 'unknown-device'],
      [new BatonError('not-blocked', 'fw1 is flowing'), 409, 'not-blocked'],
      [new BatonError('not-leader', 'runtime r2 leads'), 503, 'not-leader'],
      [new BatonError('timeout', 'still outstanding: fw1'), 504, 'timeout'],
      [new BatonError('unsupported', 'not built'), 501, 'unsupported'],
      [new Error('boom'), 500, 'internal'],
    ];
    for (const [err, status, code] of cases) {
      s.failWith(err);
      const r = await s.post('/api/devices/fw1/pause');
      expect(r.status, code).toBe(status);
      expect(r.json.error!.code).toBe(code);
      if (err instanceof BatonError) expect(r.json.error!.message).toBe(err.message);
    }
  });

  it('a body that is not a JSON object, an unknown field, a missing unblock action or a bad id: 400 naming it, and nothing is done', async () => {
    const s = await serve();
    const bad = [
      await s.call('POST', '/api/devices/fw1/pause', { body: 'not json', headers: { 'content-type': 'application/json' } }),
      await s.call('POST', '/api/devices/fw1/pause', { body: '[1]', headers: { 'content-type': 'application/json' } }),
      await s.post('/api/dead-letters/7/drop', { reasn: 'typo' }),
      await s.post('/api/devices/fw1/unblock', {}),
      await s.post('/api/devices/fw1/unblock', { action: 'force' }),
      await s.post('/api/wait', { timeoutMs: -5 }),
      await s.post('/api/devices/%E0%A4%A/pause'),
    ];
    expect(bad.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400, 400]);
    expect(bad.map((r) => r.json.error!.message)).toEqual([
      'the request body is not JSON; nothing was done',
      'the request body must be a JSON object; nothing was done',
      'unknown field(s) "reasn" (this action takes reason); nothing was done',
      '"action" must be "retry" (send the refused message again) or "skip" (leave it dead-lettered and go on); got null; nothing was done',
      '"action" must be "retry" (send the refused message again) or "skip" (leave it dead-lettered and go on); got "force"; nothing was done',
      '"timeoutMs" must be a whole number >= 1 (got -5); nothing was done',
      'the path segment "%E0%A4%A" has a bad %XX escape; nothing was done',
    ]);
    expect(s.calls).toEqual([]);
    const wrongMethod = await s.call('GET', '/api/handover');
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.json.error!.message).toBe('/api/handover takes POST, not GET');
  });
});

describe('inspector options: tokens', () => {
  it('tokens alone guard an inspector beyond loopback; bad ones are refused naming the option', () => {
    expect(() => checkInspectorOptions({ port: 0, host: '0.0.0.0', tokens: [{ label: 'noc', token: 't' }] })).not.toThrow();
    expect(() => checkInspectorOptions({ port: 0, host: '0.0.0.0', tokens: [] })).toThrow(/option "inspector.token" is required/);
    expect(() => checkInspectorOptions({ port: 0, tokens: [{ label: 'no c', token: 't' }] })).toThrow('option "inspector.tokens" [0].label must be 1 to 40 letters');
    expect(() => checkInspectorOptions({ port: 0, tokens: [{ label: 'a', token: '' }] })).toThrow('[0].token must be a non-empty string');
    expect(() => checkInspectorOptions({ port: 0, token: 'x', tokens: [{ label: 'token', token: 'y' }] })).toThrow('[0].label "token" is used twice ("token" is the label of inspector.token)');
    expect(() => checkInspectorOptions({ port: 0, tokens: [{ label: 'a', token: 'same' }, { label: 'b', token: 'same' }] })).toThrow('[1].token is the same as another token');
  });
});
