/**
 * Who may publish what, made true with HMAC-SHA256 (README "Trust and security").
 *
 * - The deployment secret (the runtime's `secret`) derives every key; only runtimes hold it.
 * - Each agent holds its credential: its own key K_a = HMAC(secret, "baton-agent-key:" + id) and
 *   the stream key K_s = HMAC(secret, "baton-stream-key"). K_a signs its heartbeats and receipts
 *   and the runtime's grants to it, so one agent cannot speak (or be spoken to) in another's name.
 *   K_s is the same for every agent because a queue's messages move to another agent's queue on a
 *   failover (by shovel, without re-signing): any agent must be able to check any message.
 * - Side-channel events travel as `{ agentId, body, mac }`: `body` the event's JSON text, `mac`
 *   over the channel, the agent id and those exact bytes (a heartbeat cannot pass for a receipt).
 * - A config message carries `mac`, over its fields in a fixed order (moving it keeps the body).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isId } from './ids.ts';
import type { EventChannel, WireMessage } from './ports.ts';

/** Shortest accepted deployment secret, in characters (`newSecret()` gives 43). */
export const MIN_SECRET_LENGTH = 32;

/** How an operator makes a secret, for error messages. */
export const MAKE_SECRET = 'make one with `npx baton secret` (32 random bytes) and give it to every runtime as BATON_SECRET or the secret/secretFile option';

/** A fresh deployment secret: 32 random bytes, base64url. */
export const newSecret = (): string => randomBytes(32).toString('base64url');

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

/** K_a: the key one agent signs with (and the runtime signs its grants to that agent with). */
export const agentKey = (secret: string, agentId: string): Buffer => hmac(secret, `baton-agent-key:${agentId}`);

/** K_s: the key every config message on an agent queue is signed with. */
export const streamKey = (secret: string): Buffer => hmac(secret, 'baton-stream-key');

/** What an agent holds: its id, its own key and the stream key. */
export interface AgentCredential {
  agentId: string;
  agentKey: Buffer;
  streamKey: Buffer;
}

const CREDENTIAL_PREFIX = 'baton-agent-v1';

/** The credential of one agent as one line (`baton agent-key ID` prints it): give it to that agent only. */
export function agentCredential(secret: string, agentId: string): string {
  return [CREDENTIAL_PREFIX, agentId, agentKey(secret, agentId).toString('base64url'), streamKey(secret).toString('base64url')].join(':');
}

/** Reads a credential line; returns why it is not one (never quoting it). */
export function parseAgentCredential(text: string): AgentCredential | { invalid: string } {
  const parts = text.trim().split(':');
  if (parts.length !== 4 || parts[0] !== CREDENTIAL_PREFIX) return { invalid: `is not an agent credential (expected "${CREDENTIAL_PREFIX}:<agentId>:<key>:<key>", as \`npx baton agent-key <agentId>\` prints)` };
  const [, agentId, ka, ks] = parts as [string, string, string, string];
  if (!isId(agentId)) return { invalid: 'names no valid agent id' };
  const a = Buffer.from(ka, 'base64url');
  const s = Buffer.from(ks, 'base64url');
  if (a.length !== 32 || s.length !== 32) return { invalid: 'holds keys of the wrong length (it was cut or changed)' };
  return { agentId, agentKey: a, streamKey: s };
}

/** One side-channel event as it travels: see the header. */
export interface SealedEvent {
  agentId: string;
  body: string;
  mac: string;
}

const eventMac = (key: Buffer, channel: EventChannel, agentId: string, body: string) => hmac(key, `${channel}\n${agentId}\n${body}`);

/** Signs an event of (or to) `agentId` for `channel`. */
export function seal(key: Buffer, channel: EventChannel, agentId: string, event: object): SealedEvent {
  const body = JSON.stringify(event);
  return { agentId, body, mac: eventMac(key, channel, agentId, body).toString('base64url') };
}

const macEqual = (mac: unknown, expected: Buffer): boolean => {
  if (typeof mac !== 'string') return false;
  const given = Buffer.from(mac, 'base64url');
  return given.length === expected.length && timingSafeEqual(given, expected);
};

/**
 * Checks a sealed event and returns its content (whose `agentId` is the signer's), or why it is
 * refused. `keyOf` gives the key of an agent id (the runtime derives it; an agent knows only its own).
 */
export function unseal(keyOf: (agentId: string) => Buffer | null, channel: EventChannel, v: unknown): { agentId: string; event: Record<string, unknown> } | { invalid: string } {
  const e = v as Partial<SealedEvent> | null;
  if (typeof e !== 'object' || e === null || typeof e.body !== 'string' || typeof e.mac !== 'string') return { invalid: 'unsigned (no body and mac)' };
  if (!isId(e.agentId)) return { invalid: 'signed in the name of no valid agent id' };
  const key = keyOf(e.agentId);
  if (!key) return { invalid: 'signed in the name of another agent' };
  if (!macEqual(e.mac, eventMac(key, channel, e.agentId, e.body))) return { invalid: 'wrong signature (not made with that agent\'s key)' };
  let event: unknown;
  try {
    event = JSON.parse(e.body);
  } catch {
    return { invalid: 'signed body is not JSON' };
  }
  if (typeof event !== 'object' || event === null || Array.isArray(event)) return { invalid: 'signed body is not an object' };
  const content = event as Record<string, unknown>;
  if (content.agentId !== e.agentId) return { invalid: 'signed body names another agent' };
  return { agentId: e.agentId, event: content };
}

/** The fields of a config message a MAC covers, in a fixed order (its JSON body may order them otherwise). */
const messageMac = (key: Buffer, m: WireMessage) => hmac(key, JSON.stringify([m.deviceId, m.seq, m.method, m.path, m.body ?? null, m.key ?? null]));

/** The message with its `mac` (what the runtime publishes to an agent queue). */
export function signMessage(key: Buffer, m: WireMessage): WireMessage {
  const { mac: _old, ...fields } = m;
  return { ...fields, mac: messageMac(key, fields).toString('base64url') };
}

/** Why a message from an agent queue is not the runtime's (null when it is). */
export function messageProblem(key: Buffer, m: WireMessage): string | null {
  if (m.mac === undefined) return 'unauthenticated: the message has no mac (it was not published by a baton runtime)';
  return macEqual(m.mac, messageMac(key, m)) ? null : 'unauthenticated: wrong mac (the message was not published by a runtime of this deployment, or was changed)';
}
