/** Message validation at the edge and the wire encoding shared by the runtime and the agents. */
import { BatonError } from './errors.ts';
import type { HttpMethod, WireMessage } from './ports.ts';

/** What a host passes to `dispatch()`. */
export interface ConfigMessage {
  deviceId: string;
  method: HttpMethod;
  path: string;
  body?: unknown;
  key?: string;
}

const METHODS: readonly HttpMethod[] = ['PUT', 'POST', 'PATCH', 'DELETE'];
const MESSAGE_FIELDS = new Set(['deviceId', 'method', 'path', 'body', 'key']);

function invalid(what: string, details: Record<string, unknown> = {}): BatonError {
  return new BatonError('invalid-message', `${what}; the message was not stored or sent`, details);
}

/** Deepest nesting a body may have: far beyond any config, well inside every parser's stack. */
export const MAX_BODY_DEPTH = 256;

/** Where a body stops being JSON, as a path like `body.a[2] (why)`. */
class NotJson {
  constructor(readonly where: string) {}
}

/**
 * The snapshot of a body taken at `dispatch()`: a deep copy of plain, frozen JSON values, made by
 * reading every property once. What is stored and sent is this copy, so a host changing its object
 * (or a getter answering differently the second time) changes nothing after the checks.
 */
function frozenCopy(v: unknown, path: string, depth: number, seen: Set<object>): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (Number.isFinite(v)) return v;
    throw new NotJson(`${path} (${v})`);
  }
  if (typeof v !== 'object') throw new NotJson(`${path} (${typeof v})`);
  if (depth >= MAX_BODY_DEPTH) throw new NotJson(`${path} (nested deeper than ${MAX_BODY_DEPTH} levels)`);
  if (seen.has(v)) throw new NotJson(`${path} (circular reference)`);
  seen.add(v);
  try {
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      for (let i = 0, n = v.length; i < n; i++) out.push(frozenCopy(v[i], `${path}[${i}]`, depth + 1, seen));
      return Object.freeze(out);
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) throw new NotJson(`${path} (${proto?.constructor?.name ?? 'object'} instance)`);
    const out: Record<string, unknown> = {};
    for (const [k, child] of Object.entries(v)) {
      const copy = frozenCopy(child, `${path}.${k}`, depth + 1, seen);
      // an own "__proto__" key is defined, not assigned: it stays data and never sets the prototype
      if (k === '__proto__') Object.defineProperty(out, k, { value: copy, enumerable: true });
      else out[k] = copy;
    }
    return Object.freeze(out);
  } finally {
    seen.delete(v);
  }
}

/** RFC 3986 `pchar`, `/` and `?` (a path, then an optional query); `%` only in a `%XX` escape. */
const PATH_CHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@/?]/;
/** What `message.path` may hold, for error messages and the README. */
export const PATH_RULE =
  'a string starting with "/" (at most 2048 characters) of RFC 3986 path characters (letters, digits, ' +
  "-._~!$&'()*+,;=:@/ and %XX escapes, then an optional ?query; percent-encode anything else), " +
  'not starting with "//", with no "." or ".." segment (nor one percent-encoded or behind an encoded slash)';

/** Why `path` cannot go out as a device request's path (under the device's base path), or null. */
export function pathProblem(path: unknown): string | null {
  if (typeof path !== 'string') return 'is missing or not a string';
  if (!path.startsWith('/')) return 'does not start with "/"';
  if (path.length > 2048) return `is ${path.length} characters long`;
  for (let i = 0; i < path.length; i++) {
    const c = path[i]!;
    if (c === '%') {
      if (!/^[0-9A-Fa-f]{2}$/.test(path.slice(i + 1, i + 3))) return `has a bad %XX escape at index ${i}`;
      i += 2;
    } else if (!PATH_CHAR.test(c)) return `holds ${charName(String.fromCodePoint(path.codePointAt(i)!))} at index ${i}`;
  }
  if (path.startsWith('//')) return 'starts with "//" (read as a host name by many servers)';
  const segments = path.split('?', 1)[0]!.split('/');
  for (const seg of segments) {
    // a server may decode %2E, %2F and %5C before it resolves dot segments
    const decoded = seg.replace(/%2e/gi, '.').split(/%2f|%5c/i);
    if (decoded.some((s) => s === '.' || s === '..')) return `has a "." or ".." segment ("${seg}"), which could leave the device's base path`;
  }
  return null;
}

/** The `Idempotency-Key` header carries the key: printable ASCII, no leading or trailing space (HTTP trims them). */
const KEY_SYNTAX = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;
export const KEY_RULE = 'printable ASCII (U+0020 to U+007E) without a leading or trailing space, at most 256 characters (it is sent in the Idempotency-Key header)';

/** Why `key` cannot go out in a header, or null. */
export function keyProblem(key: unknown): string | null {
  if (typeof key !== 'string') return 'is not a string';
  if (key.length > 256) return `is ${key.length} characters long`;
  if (!KEY_SYNTAX.test(key)) {
    const c = [...key].find((ch) => !/[\x20-\x7e]/.test(ch));
    return c === undefined ? 'starts or ends with a space' : `holds ${charName(c)}`;
  }
  return null;
}

const charName = (c: string) => {
  const hex = `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
  return /[\x21-\x7e]/.test(c) ? `"${c}" (${hex})` : hex;
};

/**
 * Checks a host's message; throws `invalid-message` naming the field. The message returned holds
 * a frozen snapshot of the body, already checked against `maxMessageBytes`: that snapshot is what
 * is stored and sent, whatever the host does with its object afterwards.
 */
export function validateMessage(
  input: unknown,
  knownDevice: (id: string) => boolean,
  maxMessageBytes: number,
): ConfigMessage {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalid('dispatch() needs a message object');
  }
  const m = input as Record<string, unknown>;
  for (const k of Object.keys(m)) {
    if (!MESSAGE_FIELDS.has(k)) throw invalid(`unknown field "${k}" in message (known: ${[...MESSAGE_FIELDS].join(', ')})`, { field: k });
  }
  // each field read once: a getter cannot answer one thing to the checks and another to the copy
  const { deviceId, method, path, key } = m;
  if (typeof deviceId !== 'string' || deviceId.length === 0) {
    throw invalid('message.deviceId is missing or not a non-empty string', { field: 'deviceId' });
  }
  if (!knownDevice(deviceId)) {
    throw invalid(`message.deviceId "${deviceId}" is not a configured device`, { field: 'deviceId', deviceId });
  }
  if (typeof method !== 'string' || !METHODS.includes(method as HttpMethod)) {
    throw invalid(`message.method must be one of ${METHODS.join(', ')}`, { field: 'method', deviceId });
  }
  const badPath = pathProblem(path);
  if (badPath) throw invalid(`message.path ${badPath}; it must be ${PATH_RULE}`, { field: 'path', deviceId });
  const badKey = key === undefined ? null : keyProblem(key);
  if (badKey) throw invalid(`message.key ${badKey}; it must be ${KEY_RULE}`, { field: 'key', deviceId });
  let body: unknown;
  try {
    body = frozenCopy(m.body ?? null, 'body', 0, new Set());
  } catch (err) {
    if (err instanceof NotJson) throw invalid(`message.body is not JSON-serialisable at ${err.where}`, { field: 'body', deviceId });
    throw invalid(`message.body could not be read (${(err as Error)?.message ?? String(err)})`, { field: 'body', deviceId });
  }
  const size = Buffer.byteLength(JSON.stringify(body));
  if (size > maxMessageBytes) {
    throw invalid(`message.body is ${size} bytes, over maxMessageBytes (${maxMessageBytes})`, { field: 'body', deviceId, size });
  }
  const out: ConfigMessage = { deviceId, method: method as HttpMethod, path: path as string, body };
  if (key !== undefined) out.key = key as string;
  return out;
}

/** `messageId` of a message on the wire. */
export const messageId = (m: { deviceId: string; seq: number }) => `${m.deviceId}:${m.seq}`;

/** AMQP headers of a config message. */
export function wireHeaders(m: WireMessage): Record<string, string | number> {
  return { 'x-baton-seq': m.seq, 'x-baton-device': m.deviceId };
}

export function encodeMessage(m: WireMessage): Buffer {
  return Buffer.from(JSON.stringify(m));
}

/** Decodes an AMQP body; returns the reason instead of throwing, so agents can dead-letter it. */
export function decodeMessage(raw: Buffer): { message: WireMessage } | { malformed: string } {
  let v: unknown;
  try {
    v = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    return { malformed: `body is not JSON (${(e as Error).message})` };
  }
  if (typeof v !== 'object' || v === null) return { malformed: 'body is not an object' };
  const m = v as Record<string, unknown>;
  if (typeof m.deviceId !== 'string' || m.deviceId === '') return { malformed: 'deviceId missing' };
  if (!Number.isSafeInteger(m.seq) || (m.seq as number) < 1) return { malformed: 'seq missing or not a positive integer' };
  if (!METHODS.includes(m.method as HttpMethod)) return { malformed: `method "${String(m.method)}" not allowed` };
  if (typeof m.path !== 'string' || !m.path.startsWith('/')) return { malformed: 'path missing or not absolute' };
  const message: WireMessage = {
    deviceId: m.deviceId,
    seq: m.seq as number,
    method: m.method as HttpMethod,
    path: m.path,
    body: m.body ?? null,
  };
  if (typeof m.key === 'string') message.key = m.key;
  if (typeof m.mac === 'string') message.mac = m.mac;
  return { message };
}
