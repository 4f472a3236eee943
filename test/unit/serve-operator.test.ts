// baton serve's views and operator actions over a runtime double (app.inject), its access rules
// (tokens with labels recorded as `by`, the loopback Host check, stopping), and the inspector's pages
// on the same app: one server, one auth story.
import { describe, expect, it } from 'vitest';
import { BatonError } from '../../src/errors.ts';
import { serveDoubles } from '../support/serve-double.ts';

const serve = serveDoubles();

describe('views', () => {
  it('answer the runtime\'s views: status, devices, agents, switches, alarms, audit, dead letters', async () => {
    const s = await serve();
    expect((await s.call('GET', '/v1/status')).json).toMatchObject({ state: 'running', leading: true });
    expect((await s.call('GET', '/v1/devices')).json).toEqual([{ deviceId: 'fw1', state: 'idle' }, { deviceId: 'fw2', state: 'idle' }]);
    expect((await s.call('GET', '/v1/agents')).json).toEqual([{ agentId: 'a1' }]);
    expect((await s.call('GET', '/v1/switches')).json).toEqual([{ id: 's1' }]);
    expect((await s.call('GET', '/v1/alarms')).json).toEqual([{ id: 'no-healthy-agent', kind: 'no-healthy-agent' }]);
    expect((await s.call('GET', '/v1/audit?limit=5')).json).toEqual([]);
    expect((await s.call('GET', '/v1/dead-letters?device=fw1&open=true&limit=3')).json).toEqual([{ id: 7 }]);
    expect((await s.call('GET', '/v1/dead-letters/7')).json).toEqual({ id: 7 });
    const none = await s.call('GET', '/v1/dead-letters/8');
    expect(none.status).toBe(404);
    expect(none.json.error.code).toBe('unknown-dead-letter');
    expect(s.calls).toEqual([
      ['audit', [{ limit: 5 }]],
      ['deadLetters', [{ deviceId: 'fw1', open: true, limit: 3 }]],
      ['deadLetter', [7]],
      ['deadLetter', [8]],
    ]);
    expect((await s.call('GET', '/v1/audit?limit=0')).status).toBe(400);
    expect((await s.call('GET', '/v1/nothing')).json.error.code).toBe('not-found');
  });
});

describe('actions', () => {
  it('call the runtime with their arguments and who asked, and answer its ActionResult', async () => {
    const s = await serve();
    expect((await s.call('POST', '/v1/devices/fw1/pause', {})).json).toMatchObject({ action: 'pause', target: 'fw1', outcome: 'done' });
    await s.call('POST', '/v1/devices/fw1/resume', {});
    await s.call('POST', '/v1/devices/fw1/unblock', { action: 'skip' });
    expect((await s.call('POST', '/v1/dead-letters/7/resend', {})).json).toMatchObject({ seq: 9 });
    await s.call('POST', '/v1/dead-letters/7/drop', { reason: 'obsolete' });
    await s.call('POST', '/v1/handover', { to: 'a2' });
    expect((await s.call('POST', '/v1/wait', { deviceId: 'fw1', timeoutMs: 500 })).json).toEqual({ drained: true, deviceId: 'fw1' });
    expect(s.calls).toEqual([
      ['pause', ['fw1', { by: 'serve' }]],
      ['resume', ['fw1', { by: 'serve' }]],
      ['unblock', ['fw1', { action: 'skip', by: 'serve' }]],
      ['resendDeadLetter', [7, { by: 'serve' }]],
      ['dropDeadLetter', [7, { reason: 'obsolete', by: 'serve' }]],
      ['handover', [{ to: 'a2', by: 'serve' }]],
      ['drained', [{ deviceId: 'fw1', timeoutMs: 500 }]],
    ]);
  });

  it('refuse a bad body naming the field (400), and nothing is done', async () => {
    const s = await serve();
    const bad = [
      await s.call('POST', '/v1/devices/fw1/unblock', { action: 'force' }),
      await s.call('POST', '/v1/dead-letters/7/drop', { reasn: 'typo' }),
      await s.call('POST', '/v1/dead-letters/x/resend', {}),
      await s.call('POST', '/v1/devices/fw1/pause', { extra: 1 }),
    ];
    expect(bad.map((r) => [r.status, r.json.error.code])).toEqual(Array(4).fill([400, 'invalid-request']));
    expect(bad[0]!.json.error.message).toContain('body.action');
    expect(s.calls).toEqual([]);
  });

  it('a runtime refusal answers its code with its status', async () => {
    const s = await serve();
    (s.runtime as unknown as { unblock: () => never }).unblock = () => {
      throw new BatonError('not-blocked', 'device fw1 is not blocked: nothing to unblock');
    };
    const r = await s.call('POST', '/v1/devices/fw1/unblock', { action: 'retry' });
    expect(r.status).toBe(409);
    expect(r.json).toEqual({ error: { code: 'not-blocked', message: 'device fw1 is not blocked: nothing to unblock', details: {} } });
  });
});

describe('access', () => {
  const tokens = [{ label: 'noc', token: 's3cret' }, { label: 'ci', token: 'other' }];

  it('with tokens: none or a wrong one is refused 401 unauthorized; the right one is recorded as token:<label>', async () => {
    const s = await serve({ tokens });
    for (const authorization of [undefined, 'Bearer wrong', 'Basic s3cret']) {
      const r = await s.call('POST', '/v1/devices/fw1/pause', {}, authorization ? { authorization } : {});
      expect(r.status, authorization).toBe(401);
      expect(r.json.error.code).toBe('unauthorized');
      expect(r.headers['www-authenticate']).toBe('Bearer');
    }
    expect((await s.call('GET', '/v1/status?token=s3cret')).status).toBe(401);
    await s.call('POST', '/v1/devices/fw1/pause', {}, { authorization: 'Bearer s3cret', 'x-baton-by': 'cli:alice' });
    await s.call('POST', '/v1/devices/fw1/resume', {}, { authorization: 'Bearer other' });
    expect(s.calls).toEqual([['pause', ['fw1', { by: 'token:noc (cli:alice)' }]], ['resume', ['fw1', { by: 'token:ci' }]]]);
    // the inspector's pages, same tokens
    expect((await s.call('GET', '/api/machines')).status).toBe(401);
    expect((await s.call('GET', '/api/machines', undefined, { authorization: 'Bearer s3cret' })).status).toBe(200);
  });

  it('bound to loopback: a Host that does not name it is refused (421), on /v1 and on the inspector\'s pages', async () => {
    const s = await serve({ loopbackPort: () => 7443 });
    expect((await s.call('GET', '/v1/status', undefined, { host: '127.0.0.1:7443' })).status).toBe(200);
    const foreign = await s.call('GET', '/v1/status', undefined, { host: 'evil.example:7443' });
    expect(foreign.status).toBe(421);
    expect(foreign.json.error.message).toContain('DNS-rebinding');
    expect((await s.call('GET', '/metrics', undefined, { host: 'evil.example:7443' })).status).toBe(421);
  });

  it('stopping: every new request is refused 503 stopping', async () => {
    let stopping = false;
    const s = await serve({ stopping: () => stopping });
    expect((await s.call('GET', '/v1/status')).status).toBe(200);
    stopping = true;
    const r = await s.call('POST', '/v1/messages', { deviceId: 'fw1', method: 'PUT', path: '/p' });
    expect(r.status).toBe(503);
    expect(r.json.error.code).toBe('stopping');
    expect(s.dispatched).toHaveLength(0);
  });
});

describe('the inspector on the same server', () => {
  it('serves the page, /metrics, the machines and its operator routes', async () => {
    const s = await serve();
    const page = await s.call('GET', '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    const metrics = await s.call('GET', '/metrics');
    expect(metrics.text).toBe('baton_up 1\n');
    expect(metrics.headers['content-type']).toContain('text/plain');
    expect(Object.keys((await s.call('GET', '/api/machines')).json)).toContain('coordinator');
    const paused = await s.serve.app.inject({ method: 'POST', url: '/api/devices/fw2/pause', headers: { 'content-type': 'application/json' }, payload: '{}' });
    expect(paused.json()).toMatchObject({ action: 'pause', target: 'fw2' });
    expect(s.calls).toEqual([['pause', ['fw2', { by: 'inspector' }]]]);
  });
});
