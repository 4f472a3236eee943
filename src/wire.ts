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

/** Finds the first value in `v` that JSON cannot carry faithfully, as a path like `body.a[2]`. */
function firstNonJson(v: unknown, path: string, seen: Set<object>): string | null {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? null : `${path} (${v})`;
  if (typeof v !== 'object') return `${path} (${typeof v})`;
  if (seen.has(v)) return `${path} (circular reference)`;
  seen.add(v);
  try {
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        const bad = firstNonJson(v[i], `${path}[${i}]`, seen);
        if (bad) return bad;
      }
      return null;
    }
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return `${path} (${proto?.constructor?.name ?? 'object'} instance)`;
    for (const [k, child] of Object.entries(v)) {
      const bad = firstNonJson(child, `${path}.${k}`, seen);
      if (bad) return bad;
    }
    return null;
  } finally {
    seen.delete(v);
  }
}

/**
 * Checks a host's message; throws `invalid-message` naming the field. Returns the encoded body
 * size so the caller can check it against `maxMessageBytes` without encoding twice.
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
  if (typeof m.deviceId !== 'string' || m.deviceId.length === 0) {
    throw invalid('message.deviceId is missing or not a non-empty string', { field: 'deviceId' });
  }
  if (!knownDevice(m.deviceId)) {
    throw invalid(`message.deviceId "${m.deviceId}" is not a configured device`, { field: 'deviceId', deviceId: m.deviceId });
  }
  if (typeof m.method !== 'string' || !METHODS.includes(m.method as HttpMethod)) {
    throw invalid(`message.method must be one of ${METHODS.join(', ')}`, { field: 'method', deviceId: m.deviceId });
  }
  if (typeof m.path !== 'string' || !m.path.startsWith('/') || m.path.length > 2048) {
    throw invalid('message.path must be a string starting with "/" (at most 2048 characters)', { field: 'path', deviceId: m.deviceId });
  }
  if (m.key !== undefined && (typeof m.key !== 'string' || m.key.length > 256)) {
    throw invalid('message.key must be a string of at most 256 characters', { field: 'key', deviceId: m.deviceId });
  }
  const bad = firstNonJson(m.body ?? null, 'body', new Set());
  if (bad) throw invalid(`message.body is not JSON-serialisable at ${bad}`, { field: 'body', deviceId: m.deviceId });
  const size = Buffer.byteLength(JSON.stringify(m.body ?? null));
  if (size > maxMessageBytes) {
    throw invalid(`message.body is ${size} bytes, over maxMessageBytes (${maxMessageBytes})`, {
      field: 'body',
      deviceId: m.deviceId,
      size,
    });
  }
  const out: ConfigMessage = { deviceId: m.deviceId, method: m.method as HttpMethod, path: m.path, body: m.body ?? null };
  if (m.key !== undefined) out.key = m.key as string;
  return out;
}

/** `messageId` of a message on the wire. */
export const messageId = (m: { deviceId: string; seq: number }) => `${m.deviceId}:${m.seq}`;

/** AMQP headers of a config message. */
export function wireHeaders(m: WireMessage): Record<string, string | number> {
  return { 'x-baton-seq': m.seq, 'x-baton-epoch': m.epoch, 'x-baton-device': m.deviceId };
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
  if (!Number.isSafeInteger(m.epoch) || (m.epoch as number) < 0) return { malformed: 'epoch missing or not an integer' };
  if (!METHODS.includes(m.method as HttpMethod)) return { malformed: `method "${String(m.method)}" not allowed` };
  if (typeof m.path !== 'string' || !m.path.startsWith('/')) return { malformed: 'path missing or not absolute' };
  const message: WireMessage = {
    deviceId: m.deviceId,
    seq: m.seq as number,
    epoch: m.epoch as number,
    method: m.method as HttpMethod,
    path: m.path,
    body: m.body ?? null,
  };
  if (typeof m.key === 'string') message.key = m.key;
  return { message };
}
