// baton serve, API v1's messages over a runtime double (app.inject): one message and a batch accepted
// in order, schema errors in the one error shape, safe retries with Idempotency-Key (the first answer
// replayed, a reused key refused naming it, two at once carried out once, a failure frees the key), a
// standby's redirect, and the fate route without the runtime's fate().
import { describe, expect, it, vi } from 'vitest';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import { Idempotency, type StoredAnswer } from '../../src/serve/idempotency.ts';
import { captureLogs } from '../support/log-capture.ts';
import { BatonError } from '../../src/errors.ts';
import { notLeader, serveDoubles, stillClock } from '../support/serve-double.ts';

const serve = serveDoubles();
const msg = (deviceId = 'fw1', path = '/policies/p1', body: unknown = { allow: true }) => ({ deviceId, method: 'PUT', path, body });

describe('POST /v1/messages', () => {
  it('accepts a message: 202 { deviceId, seq }, dispatched once; a device id of 200 characters is routed', async () => {
    const s = await serve({}, ['fw1', 'd'.repeat(200)]);
    expect((await s.call('GET', `/v1/messages/${'d'.repeat(200)}/1`)).json.error.code).toBe('not-built');
    const r = await s.call('POST', '/v1/messages', msg());
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ deviceId: 'fw1', seq: 1 });
    expect(s.dispatched).toHaveLength(1);
  });

  it('refuses a bad message with 400 invalid-request naming the field; an unknown device with the runtime\'s code; nothing dispatched', async () => {
    const s = await serve();
    const noMethod = await s.call('POST', '/v1/messages', { deviceId: 'fw1', path: '/p' });
    expect(noMethod.status).toBe(400);
    expect(noMethod.json.error).toMatchObject({ code: 'invalid-request' });
    expect(noMethod.json.error.message).toContain('method');
    const extra = await s.call('POST', '/v1/messages', { ...msg(), colour: 'red' });
    expect(extra.status).toBe(400);
    expect(extra.json.error.message).toMatch(/additional|colour/);
    const unknown = await s.call('POST', '/v1/messages', msg('nope'));
    expect(unknown.status).toBe(400);
    expect(unknown.json.error).toMatchObject({ code: 'invalid-message', details: { field: 'deviceId' } });
    expect(unknown.json.error.message).toContain('"nope" is not a configured device');
    expect(s.dispatched).toHaveLength(0);
  });

  it('refuses a body over the limit (413) and a body that is not JSON (400), in the error shape', async () => {
    const s = await serve({ bodyLimit: 200 });
    const big = await s.call('POST', '/v1/messages', msg('fw1', '/p', { x: 'y'.repeat(300) }));
    expect(big.status).toBe(413);
    expect(big.json.error.code).toBe('invalid-request');
    const notJson = await s.serve.app.inject({ method: 'POST', url: '/v1/messages', headers: { 'content-type': 'application/json' }, payload: '{"deviceId":' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json().error.code).toBe('invalid-request');
  });
});

describe('Idempotency-Key', () => {
  it('a repeat with the same key and body answers the first answer (200, Idempotent-Replayed) and dispatches nothing more', async () => {
    const s = await serve();
    const first = await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k-1' });
    // same body, other key order
    const again = await s.call('POST', '/v1/messages', { body: { allow: true }, path: '/policies/p1', method: 'PUT', deviceId: 'fw1' }, { 'idempotency-key': 'k-1' });
    expect(first.status).toBe(202);
    expect(again.status).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.json).toEqual(first.json);
    expect(s.dispatched).toHaveLength(1);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
  });

  it('the same key with another body is refused 422 idempotency-key-reused naming the key; other keys are independent', async () => {
    const s = await serve();
    await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k-1' });
    const other = await s.call('POST', '/v1/messages', msg('fw1', '/policies/p2'), { 'idempotency-key': 'k-1' });
    expect(other.status).toBe(422);
    expect(other.json.error).toMatchObject({ code: 'idempotency-key-reused', details: { key: 'k-1' } });
    expect(other.json.error.message).toContain('"k-1"');
    // a batch is another request, even with the same message
    expect((await s.call('POST', '/v1/batches', { messages: [msg()] }, { 'idempotency-key': 'k-1' })).status).toBe(422);
    expect((await s.call('POST', '/v1/messages', msg('fw1', '/policies/p2'), { 'idempotency-key': 'k-2' })).json).toEqual({ deviceId: 'fw1', seq: 2 });
  });

  it('two requests with one key at once: carried out once, both answered with its seq', async () => {
    const keys = createMemoryStore();
    const idem = new Idempotency({ store: keys, clock: stillClock, log: captureLogs().logger });
    let calls = 0;
    let release!: () => void;
    const slow = () => new Promise<StoredAnswer>((r) => (release = () => r({ status: 202, body: String(++calls) })));
    // both reach the key before the first is answered (run() claims it before its first await)
    const a = idem.run('k', 'POST /v1/messages', msg(), slow);
    const b = idem.run('k', 'POST /v1/messages', msg(), slow);
    const c = idem.run('k', 'POST /v1/messages', msg('fw2'), slow);
    await expect(c).rejects.toMatchObject({ code: 'idempotency-key-reused' });
    await vi.waitFor(() => expect(release).toBeDefined());
    release();
    expect(await Promise.all([a, b])).toEqual([{ status: 202, body: '1', replayed: false }, { status: 202, body: '1', replayed: true }]);
    expect(calls).toBe(1);
  });

  it('a refused request frees its key: the retry is carried out', async () => {
    const s = await serve();
    s.failures.push(new BatonError('broker-unavailable', 'RabbitMQ is down; the message was not stored'));
    const failed = await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' });
    expect(failed.status).toBe(503);
    expect(failed.json.error.code).toBe('broker-unavailable');
    const retry = await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' });
    expect(retry.status).toBe(202);
    expect(s.dispatched).toHaveLength(1);
  });

  it('a key claimed by a request that never answered (its server died) answers 409 in flight until the claim times out', async () => {
    const s = await serve();
    const { requestHash } = await import('../../src/serve/idempotency.ts');
    await s.keys.claimIdempotencyKey({ key: 'k', hash: requestHash('POST /v1/messages', msg()), at: Date.now(), expiresAt: Date.now() + 60_000 });
    const r = await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' });
    expect(r.status).toBe(409);
    expect(r.json.error.code).toBe('idempotency-key-in-flight');
    expect(r.headers['retry-after']).toBe('1');
    expect(s.dispatched).toHaveLength(0);
  });

  it('the claim timeout is an option: a claim older than it is taken over and carried out', async () => {
    const { requestHash } = await import('../../src/serve/idempotency.ts');
    const claimed = (s: Awaited<ReturnType<typeof serve>>) =>
      s.keys.claimIdempotencyKey({ key: 'k', hash: requestHash('POST /v1/messages', msg()), at: Date.now() - 6000, expiresAt: Date.now() + 60_000 });
    const short = await serve({ idempotencyClaimTimeoutMs: 5000 });
    await claimed(short);
    expect((await short.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' })).status).toBe(202);
    expect(short.dispatched).toHaveLength(1);
    const byDefault = await serve();
    await claimed(byDefault);
    expect((await byDefault.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' })).status).toBe(409);
  });

  it('refuses a key that is not 1..200 printable characters (400)', async () => {
    const s = await serve();
    expect((await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'x'.repeat(201) })).status).toBe(400);
    expect((await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': ' lead' })).status).toBe(400);
  });
});

describe('POST /v1/batches', () => {
  it('accepts a batch in request order (seq order per device)', async () => {
    const s = await serve();
    const r = await s.call('POST', '/v1/batches', { messages: [msg('fw1', '/a'), msg('fw2', '/b'), msg('fw1', '/c')] });
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ accepted: [{ deviceId: 'fw1', seq: 1 }, { deviceId: 'fw2', seq: 1 }, { deviceId: 'fw1', seq: 2 }] });
    expect(s.dispatched.map((m) => m.path)).toEqual(['/a', '/b', '/c']);
  });

  it('refuses the whole batch when one message is bad, naming its index; nothing dispatched', async () => {
    const s = await serve();
    const r = await s.call('POST', '/v1/batches', { messages: [msg('fw1', '/a'), msg('ghost', '/b')] });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ code: 'invalid-message', details: { index: 1 } });
    expect(r.json.error.message).toContain('messages[1]');
    expect(s.dispatched).toHaveLength(0);
    expect((await s.call('POST', '/v1/batches', { messages: [] })).status).toBe(400);
  });

  it('a batch the runtime refused midway says which were accepted, and a retry with its key replays that (no second dispatch)', async () => {
    const s = await serve();
    s.failures.push(null, new BatonError('broker-unavailable', 'RabbitMQ is down'), new BatonError('broker-unavailable', 'RabbitMQ is down'));
    const r = await s.call('POST', '/v1/batches', { messages: [msg('fw1', '/a'), msg('fw1', '/b'), msg('fw1', '/c')] }, { 'idempotency-key': 'b1' });
    expect(r.status).toBe(503);
    expect(r.json.error).toMatchObject({ code: 'broker-unavailable', details: { accepted: [{ index: 0, deviceId: 'fw1', seq: 1 }], refusedFrom: 1 } });
    const again = await s.call('POST', '/v1/batches', { messages: [msg('fw1', '/a'), msg('fw1', '/b'), msg('fw1', '/c')] }, { 'idempotency-key': 'b1' });
    expect(again.status).toBe(503);
    expect(again.json).toEqual(r.json);
    expect(s.dispatched).toHaveLength(1);
  });
});

describe('a standby', () => {
  it('answers 307 to the leader (Location: same path, details.leader) when the runtime says not-leader', async () => {
    const s = await serve({ ports: { leader: { leaderUrl: async () => 'https://baton-1:7443/' } } });
    s.failures.push(notLeader());
    const r = await s.call('POST', '/v1/messages', msg(), { 'idempotency-key': 'k' });
    expect(r.status).toBe(307);
    expect(r.headers.location).toBe('https://baton-1:7443/v1/messages');
    expect(r.json.error).toMatchObject({ code: 'not-leader', details: { leader: 'https://baton-1:7443/' } });
  });

  it('answers 503 no-leader with Retry-After: 1 when no leader is known', async () => {
    const s = await serve();
    s.failures.push(notLeader());
    const r = await s.call('POST', '/v1/messages', msg());
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('1');
    expect(r.json.error.code).toBe('no-leader');
  });
});

describe('GET /v1/messages/{deviceId}/{seq}', () => {
  it('answers 501 not-built without the runtime\'s fate(), and the fate with it (waitMs passed on)', async () => {
    expect((await (await serve()).call('GET', '/v1/messages/fw1/1')).json.error.code).toBe('not-built');
    const asked: unknown[] = [];
    const s = await serve({
      ports: {
        fates: {
          fate: async (m, o) => {
            asked.push([m, o]);
            if (m.seq > 1) throw new BatonError('unknown-message', `device ${m.deviceId} has no seq ${m.seq}`);
            return { ...m, fate: 'applied' as const, source: 'ledger' as const };
          },
        },
      },
    });
    expect((await s.call('GET', '/v1/messages/fw1/1?waitMs=500')).json).toEqual({ deviceId: 'fw1', seq: 1, fate: 'applied', source: 'ledger' });
    expect(asked).toEqual([[{ deviceId: 'fw1', seq: 1 }, { waitMs: 500 }]]);
    const none = await s.call('GET', '/v1/messages/fw1/5');
    expect(none.status).toBe(404);
    expect(none.json.error.code).toBe('unknown-message');
    expect((await s.call('GET', '/v1/messages/fw1/1?waitMs=70000')).status).toBe(400);
  });
});
