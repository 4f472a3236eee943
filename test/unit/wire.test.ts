import { describe, expect, it } from 'vitest';
import { BatonError } from '../../src/errors.ts';
import { decodeMessage, encodeMessage, validateMessage } from '../../src/wire.ts';

const known = (id: string) => id === 'fw1';
const ok = { deviceId: 'fw1', method: 'PUT', path: '/policies/p1', body: { a: [1, 'x', null, true] } };

function codeAndField(f: () => unknown) {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(BatonError);
    return { code: (e as BatonError).code, field: (e as BatonError).details.field, message: (e as Error).message };
  }
  throw new Error('did not throw');
}

describe('validateMessage', () => {
  it('accepts a well-formed message', () => {
    expect(validateMessage(ok, known, 1024)).toEqual(ok);
  });

  it.each([
    ['missing deviceId', { ...ok, deviceId: undefined }, 'deviceId'],
    ['empty deviceId', { ...ok, deviceId: '' }, 'deviceId'],
    ['unknown deviceId', { ...ok, deviceId: 'fw9' }, 'deviceId'],
    ['bad method', { ...ok, method: 'GET' }, 'method'],
    ['relative path', { ...ok, path: 'policies' }, 'path'],
    ['function in body', { ...ok, body: { f: () => 1 } }, 'body'],
    ['bigint in body', { ...ok, body: { n: 10n } }, 'body'],
    ['NaN in body', { ...ok, body: [NaN] }, 'body'],
    ['Date in body', { ...ok, body: { at: new Date() } }, 'body'],
    ['non-string key', { ...ok, key: 5 }, 'key'],
    ['unknown field', { ...ok, colour: 'red' }, 'colour'],
  ])('rejects %s with invalid-message naming the field', (_, input, field) => {
    const r = codeAndField(() => validateMessage(input, known, 1024));
    expect(r.code).toBe('invalid-message');
    expect(r.field).toBe(field);
    expect(r.message).toMatch(/not stored or sent/);
  });

  it('rejects a circular body', () => {
    const body: Record<string, unknown> = {};
    body.self = body;
    expect(codeAndField(() => validateMessage({ ...ok, body }, known, 1024)).message).toMatch(/circular/);
  });

  it('rejects a body over maxMessageBytes, saying the size', () => {
    const r = codeAndField(() => validateMessage({ ...ok, body: 'x'.repeat(2000) }, known, 1024));
    expect(r.field).toBe('body');
    expect(r.message).toMatch(/2002 bytes, over maxMessageBytes \(1024\)/);
  });

  it('rejects what is not an object', () => {
    expect(codeAndField(() => validateMessage(null, known, 1024)).code).toBe('invalid-message');
    expect(codeAndField(() => validateMessage([ok], known, 1024)).code).toBe('invalid-message');
  });
});

describe('wire encoding', () => {
  it('round-trips', () => {
    const m = { deviceId: 'fw1', seq: 3, method: 'DELETE' as const, path: '/p', body: null, key: 'k' };
    expect(decodeMessage(encodeMessage(m))).toEqual({ message: m });
  });

  it('carries no epoch: one on the wire is not read (the device write takes the lease epoch, its one source)', () => {
    const raw = JSON.stringify({ deviceId: 'fw1', seq: 3, epoch: 99, method: 'PUT', path: '/p', body: null });
    const r = decodeMessage(Buffer.from(raw));
    expect('message' in r && r.message).toEqual({ deviceId: 'fw1', seq: 3, method: 'PUT', path: '/p', body: null });
  });

  it.each([
    ['not JSON', 'nope', /not JSON/],
    ['no seq', JSON.stringify({ deviceId: 'd', method: 'PUT', path: '/p' }), /seq/],
    ['bad method', JSON.stringify({ deviceId: 'd', seq: 1, method: 'GET', path: '/p' }), /method/],
    ['array', '[]', /deviceId/],
  ])('reports a malformed body (%s) instead of throwing', (_, raw, why) => {
    const r = decodeMessage(Buffer.from(raw));
    expect('malformed' in r && r.malformed).toMatch(why);
  });
});

// Issue 13, items 1, 3, 6, 7: what the wire cannot carry is refused at dispatch(), naming the field.
describe('validateMessage: what an HTTP request can carry', () => {
  const refused = (input: object) => codeAndField(() => validateMessage(input, known, 1024));

  it.each([
    ['a space', '/policies/a b'],
    ['CR/LF', '/policies/p1\r\nX-Evil: 1'],
    ['a lone LF', '/policies/p1\n'],
    ['NUL', '/policies/p\u00001'],
    ['a control character', '/policies/p\u007f'],
    ['a tab', '/policies/\tp1'],
    ['a character above U+00FF', '/policies/\u0100'],
    ['an emoji', '/policies/\u{1F600}'],
    ['a Latin-1 letter (raw, not percent-encoded)', '/policies/caf\u00e9'],
    ['a fragment', '/policies/p1#top'],
    ['a bad percent escape', '/policies/p%zz'],
    ['a truncated percent escape', '/policies/p%2'],
    ['a backslash', '/policies\\p1'],
    ['an authority-like start', '//evil.example/policies/p1'],
  ])('refuses a path with %s', (_, path) => {
    const r = refused({ ...ok, path });
    expect(r).toMatchObject({ code: 'invalid-message', field: 'path' });
    expect(r.message).toMatch(/message\.path .*; it must be .*RFC 3986/);
    expect(r.message).toMatch(/not stored or sent/);
  });

  it.each([
    ['..', '/../admin/x'],
    ['.. in the middle', '/policies/../../admin'],
    ['.', '/policies/./p1'],
    ['a trailing ..', '/policies/..'],
    ['%2e%2e', '/%2e%2e/admin'],
    ['%2E%2E', '/policies/%2E%2E/admin'],
    ['.%2e', '/policies/.%2e/admin'],
    ['%2e', '/policies/%2e/p1'],
    ['.. behind an encoded slash', '/policies/x%2f..%2fadmin'],
    ['.. behind an encoded backslash', '/policies/x%5C..'],
  ])('refuses a dot segment: %s', (_, path) => {
    const r = refused({ ...ok, path });
    expect(r).toMatchObject({ code: 'invalid-message', field: 'path' });
    expect(r.message).toMatch(/"\." or "\.\." segment/);
  });

  it.each([
    '/policies/p1',
    '/policies/p1/',
    "/a-b_c.d~e/!$&'()*+,;=:@",
    '/interfaces/GigabitEthernet0%2F1',
    '/policies/caf%C3%A9',
    '/policies/p1?expand=rules&depth=2/x?y',
    '/policies/..x/x..',
    '/policies/...',
  ])('accepts the RFC 3986 path %s', (path) => {
    expect(validateMessage({ ...ok, path }, known, 1024).path).toBe(path);
  });

  it.each([
    ['CR/LF', 'k\r\nX-Evil: 1'],
    ['NUL', 'k\u0000'],
    ['a tab', 'k\tk'],
    ['a character above U+007E', 'caf\u00e9'],
    ['a character above U+00FF', 'k\u0100'],
    ['a leading space', ' k'],
    ['a trailing space', 'k '],
  ])('refuses a key with %s', (_, key) => {
    const r = refused({ ...ok, key });
    expect(r).toMatchObject({ code: 'invalid-message', field: 'key' });
    expect(r.message).toMatch(/message\.key .*; it must be printable ASCII/);
  });

  it('accepts a key of printable ASCII with inner spaces', () => {
    expect(validateMessage({ ...ok, key: 'policy web:v2 (#7)' }, known, 1024).key).toBe('policy web:v2 (#7)');
  });

  it('refuses a body nested 10^5 deep with invalid-message, not a RangeError', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100_000; i++) deep = [deep];
    const r = refused({ ...ok, body: deep });
    expect(r).toMatchObject({ code: 'invalid-message', field: 'body' });
    expect(r.message).toMatch(/nested deeper than 256 levels/);
    let objects: unknown = {};
    for (let i = 0; i < 100_000; i++) objects = { a: objects };
    expect(refused({ ...ok, body: objects })).toMatchObject({ code: 'invalid-message', field: 'body' });
  });

  it('accepts a body nested 256 deep', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 255; i++) deep = [deep];
    expect(validateMessage({ ...ok, body: deep }, known, 1 << 20).body).toEqual(deep);
  });
});

describe('validateMessage: the body is a snapshot taken at dispatch()', () => {
  it('returns a deep copy: changing the host object afterwards changes nothing', () => {
    const body = { name: 'web', rules: [{ port: 443 }] };
    const m = validateMessage({ ...ok, body }, known, 1024);
    body.name = 'x'.repeat(5 * 1024 * 1024);
    body.rules[0]!.port = 10n as unknown as number;
    body.rules.push({ port: 80 });
    expect(m.body).toEqual({ name: 'web', rules: [{ port: 443 }] });
    expect(JSON.stringify(m.body)).toBe('{"name":"web","rules":[{"port":443}]}');
  });

  it('the copy is frozen all the way down, and the host object is not', () => {
    const body = { a: { b: [1, { c: 2 }] } };
    const m = validateMessage({ ...ok, body }, known, 1024);
    const copy = m.body as { a: { b: [number, { c: number }] } };
    expect(Object.isFrozen(copy) && Object.isFrozen(copy.a) && Object.isFrozen(copy.a.b) && Object.isFrozen(copy.a.b[1])).toBe(true);
    expect(Object.isFrozen(body)).toBe(false);
  });

  it('reads each property once: a getter that changes its answer cannot slip past the checks', () => {
    let reads = 0;
    const body = {
      get n() {
        return ++reads === 1 ? 1 : 10n;
      },
    };
    const m = validateMessage({ ...ok, body }, known, 1024);
    expect(m.body).toEqual({ n: 1 });
    expect(JSON.stringify(m.body)).toBe('{"n":1}');
    expect(reads).toBe(1);
  });

  it('a getter that grows the body after the size check cannot pass maxMessageBytes', () => {
    let reads = 0;
    const body = {
      get s() {
        return ++reads === 1 ? 'small' : 'x'.repeat(4096);
      },
    };
    const m = validateMessage({ ...ok, body }, known, 1024);
    expect(Buffer.byteLength(JSON.stringify(m.body))).toBeLessThan(1024);
  });

  it('a body whose reading throws is invalid-message naming the body', () => {
    const body = new Proxy({}, { ownKeys: () => { throw new Error('trap'); } });
    const r = codeAndField(() => validateMessage({ ...ok, body }, known, 1024));
    expect(r).toMatchObject({ code: 'invalid-message', field: 'body' });
    expect(r.message).toMatch(/could not be read \(trap\)/);
  });

  it('keeps an own "__proto__" key as data, without touching the prototype', () => {
    const body = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}') as Record<string, unknown>;
    const m = validateMessage({ ...ok, body }, known, 1024);
    expect(JSON.stringify(m.body)).toBe('{"__proto__":{"polluted":true},"a":1}');
    expect(Object.getPrototypeOf(m.body)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
