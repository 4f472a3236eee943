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
    const m = { deviceId: 'fw1', seq: 3, epoch: 2, method: 'DELETE' as const, path: '/p', body: null, key: 'k' };
    expect(decodeMessage(encodeMessage(m))).toEqual({ message: m });
  });

  it.each([
    ['not JSON', 'nope', /not JSON/],
    ['no seq', JSON.stringify({ deviceId: 'd', epoch: 1, method: 'PUT', path: '/p' }), /seq/],
    ['bad method', JSON.stringify({ deviceId: 'd', seq: 1, epoch: 1, method: 'GET', path: '/p' }), /method/],
    ['array', '[]', /deviceId/],
  ])('reports a malformed body (%s) instead of throwing', (_, raw, why) => {
    const r = decodeMessage(Buffer.from(raw));
    expect('malformed' in r && r.malformed).toMatch(why);
  });
});
