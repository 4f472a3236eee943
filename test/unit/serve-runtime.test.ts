// baton serve over a real runtime (in-memory broker and store, simulated clock, one active agent the
// test speaks for): a message and a batch accepted through API v1 reach the agent's queue in seq
// order, a retry with the same Idempotency-Key is answered with the first seq and sent once, an
// unknown device is refused in the error shape, and an operator action is audited with the token's label.
import { describe, expect, it } from 'vitest';
import { createServeApp } from '../../src/serve/app.ts';
import { operatorRuntime } from '../support/operator-runtime.ts';
import { stillClock } from '../support/serve-double.ts';

async function setUp() {
  const o = await operatorRuntime();
  const serve = await createServeApp(o.runtime, { keys: o.store, clock: stillClock, tokens: [{ label: 'noc', token: 's3cret' }] });
  const call = async (method: 'GET' | 'POST', url: string, payload?: object, headers: Record<string, string> = {}) => {
    const r = await o.settle(serve.app.inject({ method, url, headers: { authorization: 'Bearer s3cret', ...headers }, ...(payload ? { payload } : {}) }));
    if (r.error) throw r.error;
    return { status: r.value!.statusCode, json: r.value!.json(), headers: r.value!.headers };
  };
  return { ...o, serve, call };
}

describe('baton serve over the runtime', () => {
  it('accepts messages and batches in seq order, replays a retried key (sent once), refuses an unknown device', async () => {
    const s = await setUp();
    const put = (path: string) => ({ deviceId: 'fw1', method: 'PUT', path, body: { path } });
    const first = await s.call('POST', '/v1/messages', put('/policies/p1'), { 'idempotency-key': 'p1' });
    expect(first).toMatchObject({ status: 202, json: { deviceId: 'fw1', seq: 1 } });
    const retry = await s.call('POST', '/v1/messages', put('/policies/p1'), { 'idempotency-key': 'p1' });
    expect(retry).toMatchObject({ status: 200, json: { deviceId: 'fw1', seq: 1 } });
    expect(retry.headers['idempotent-replayed']).toBe('true');
    const batch = await s.call('POST', '/v1/batches', { messages: [put('/policies/p1/rules/r1'), put('/policies/p1/rules/r2')] });
    expect(batch.json).toEqual({ accepted: [{ deviceId: 'fw1', seq: 2 }, { deviceId: 'fw1', seq: 3 }] });
    const unknown = await s.call('POST', '/v1/messages', { ...put('/x'), deviceId: 'ghost' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({ code: 'invalid-message' });
    await s.world.run(() => s.sent.length >= 3, s.world.now + 1000);
    expect(s.sent.map((m) => [m.seq, m.path])).toEqual([[1, '/policies/p1'], [2, '/policies/p1/rules/r1'], [3, '/policies/p1/rules/r2']]);
  });

  it('an operator action is carried out and audited as token:<label>', async () => {
    const s = await setUp();
    const r = await s.call('POST', '/v1/devices/fw2/pause', {});
    expect(r.json).toMatchObject({ action: 'pause', target: 'fw2', outcome: 'done' });
    expect((await s.call('GET', '/v1/audit')).json[0]).toMatchObject({ action: 'pause', target: 'fw2', by: 'token:noc' });
    expect((await s.call('GET', '/v1/devices')).json.find((d: { deviceId: string }) => d.deviceId === 'fw2')).toMatchObject({ state: 'paused' });
  });
});
