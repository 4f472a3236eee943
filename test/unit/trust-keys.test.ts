// The keys and seals of the trust boundary (src/trust.ts), and the RabbitMQ permissions the README
// tells operators to set (src/adapters/amqp/permissions.ts, what test/int/trust.int.test.ts sets up).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { agentPermissions, runtimePermissions, setPermissionsCommand } from '../../src/adapters/amqp/permissions.ts';
import type { WireMessage } from '../../src/ports.ts';
import { agentCredential, agentKey, messageProblem, newSecret, parseAgentCredential, seal, signMessage, streamKey, unseal } from '../../src/trust.ts';
import { decodeMessage, encodeMessage } from '../../src/wire.ts';
import { TEST_SECRET } from '../support/trust.ts';

const keyOf = (id: string) => agentKey(TEST_SECRET, id);
const msg: WireMessage = { deviceId: 'fw1', seq: 7, method: 'PUT', path: '/policies/p1', body: { b: [1, { c: 'ü' }], a: null, '10': 1 }, key: 'k1' };

describe('keys', () => {
  it('a secret is 43 base64url characters, new each time', () => {
    expect(newSecret()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(newSecret()).not.toBe(newSecret());
  });

  it("an agent's credential holds its own key and the stream key, and names it", () => {
    const c = parseAgentCredential(agentCredential(TEST_SECRET, 'edge-1'));
    expect(c).toEqual({ agentId: 'edge-1', agentKey: agentKey(TEST_SECRET, 'edge-1'), streamKey: streamKey(TEST_SECRET) });
    expect(agentKey(TEST_SECRET, 'edge-1').equals(agentKey(TEST_SECRET, 'edge-2'))).toBe(false);
    expect(parseAgentCredential('nonsense')).toMatchObject({ invalid: expect.stringMatching(/not an agent credential/) });
  });
});

describe('sealed events', () => {
  const heartbeat = { type: 'heartbeat', agentId: 'a1', beat: 1 };

  it('open with the key of the agent they name, for the channel they were sealed for', () => {
    const s = seal(keyOf('a1'), 'heartbeats', 'a1', heartbeat);
    // through JSON, as the broker carries them
    expect(unseal(keyOf, 'heartbeats', JSON.parse(JSON.stringify(s)))).toEqual({ agentId: 'a1', event: heartbeat });
  });

  it.each([
    ['unsigned', () => heartbeat, /unsigned/],
    ['a changed body', () => ({ ...seal(keyOf('a1'), 'heartbeats', 'a1', heartbeat), body: JSON.stringify({ ...heartbeat, beat: 1e15 }) }), /wrong signature/],
    ['sealed for another channel', () => seal(keyOf('a1'), 'receipts', 'a1', heartbeat), /wrong signature/],
    ["sealed with another agent's key", () => seal(keyOf('a2'), 'heartbeats', 'a1', heartbeat), /wrong signature/],
    ['a body naming another agent', () => seal(keyOf('a2'), 'heartbeats', 'a2', heartbeat), /names another agent/],
    ['signed with another secret', () => seal(agentKey(newSecret(), 'a1'), 'heartbeats', 'a1', heartbeat), /wrong signature/],
    ['an id no agent can have', () => seal(keyOf('a1\n'), 'heartbeats', 'a1\n', heartbeat), /no valid agent id/],
  ])('refuse %s', (_name, make, why) => {
    expect(unseal(keyOf, 'heartbeats', make())).toMatchObject({ invalid: expect.stringMatching(why) });
  });
});

describe('config messages', () => {
  it("carry a mac that survives the wire (the body's own key order), and nothing else passes", () => {
    const k = streamKey(TEST_SECRET);
    const decoded = decodeMessage(encodeMessage(signMessage(k, msg)));
    expect('message' in decoded && messageProblem(k, decoded.message)).toBeNull();
    const got = (decoded as { message: WireMessage }).message;
    expect(messageProblem(k, { ...got, seq: 8 })).toMatch(/unauthenticated: wrong mac/);
    expect(messageProblem(k, { ...got, body: { b: [1, { c: 'u' }], a: null, '10': 1 } })).toMatch(/wrong mac/);
    expect(messageProblem(k, msg)).toMatch(/unauthenticated: the message has no mac/);
    expect(messageProblem(streamKey(newSecret()), got)).toMatch(/wrong mac/);
  });
});

describe('RabbitMQ permissions', () => {
  it('the README gives the commands these make, for namespace baton and agent edge-1', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(setPermissionsCommand('baton-runtime', runtimePermissions('baton')));
    expect(readme).toContain(setPermissionsCommand('baton-agent-edge-1', agentPermissions('baton', 'edge-1')));
  });

  it('an agent may read only its own queue and write no queue directly but through the default exchange', () => {
    const p = agentPermissions('ns.x', 'a1');
    const may = (re: string, name: string) => new RegExp(re).test(name);
    expect(may(p.read, 'ns.x.agent.a1')).toBe(true);
    expect(may(p.read, 'ns.x.agent.a2')).toBe(false);
    expect(may(p.read, 'ns.x.agent.a10')).toBe(false);
    expect(may(p.read, 'nsxx.agent.a1')).toBe(false); // dots are literal
    expect(may(p.read, 'ns.x.heartbeats')).toBe(false);
    expect(may(p.read, 'ns.x.receipts')).toBe(false);
    expect(may(p.write, 'ns.x.control')).toBe(false);
    expect(may(p.configure, 'ns.x.agent.a2')).toBe(false);
    const r = runtimePermissions('ns.x');
    expect(may(r.configure, 'ns.x.agent.a2')).toBe(true);
    expect(may(r.configure, 'other.agent.a2')).toBe(false);
  });
});
