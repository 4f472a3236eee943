import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromEnv, loadDevicesFile, resolveAgentConfig, resolveRuntimeConfig, runtimeDefaults } from '../../src/config.ts';
import { isBatonError } from '../../src/errors.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { agentCredential } from '../../src/trust.ts';
import { TEST_SECRET, agentTrust, runtimeTrust } from '../support/trust.ts';

/** the message of what `f` throws, checked to be an invalid-config BatonError */
const configError = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(isBatonError(e, 'invalid-config')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('did not throw');
};

describe('runtime config', () => {
  it('fills defaults and freezes', () => {
    const c = resolveRuntimeConfig({ devices: ['fw1'], ...runtimeTrust });
    expect(c.checkAgentLoopTime).toBe(30_000);
    expect(c.maxMessageBytes).toBe(1024 * 1024);
    expect([c.alarmLagMs, c.alarmSwitchPhaseMs]).toEqual([60_000, 30_000]);
    expect(c.devices).toEqual(['fw1']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes devices as DeviceConfig objects too', () => {
    expect(resolveRuntimeConfig({ devices: [{ id: 'fw1', url: 'http://x' }], ...runtimeTrust }).devices).toEqual(['fw1']);
  });

  it.each([
    ['maxUnconfirmed', 'lots', /option "maxUnconfirmed" must be an integer >= 1 \(got "lots"\)/],
    ['queueType', 'stream', /option "queueType" must be one of "classic", "quorum"/],
    ['checkAgentLoopTime', 0, /option "checkAgentLoopTime"/],
    ['amqpUrl', 'http://x', /option "amqpUrl" must be a URL starting with amqp:/],
    ['databaseUrl', 42, /option "databaseUrl"/],
    ['devices', [], /option "devices" must be a non-empty array/],
    ['colour', 'red', /unknown option "colour"/],
    ['maxAgents', 0, /option "maxAgents" must be an integer >= 1/],
    ['alarmLagMs', 0, /option "alarmLagMs" must be an integer >= 1 \(got 0\)/],
    ['alarmSwitchPhaseMs', '30s', /option "alarmSwitchPhaseMs" must be an integer >= 1 \(got "30s"\)/],
  ])('createRuntime fails naming the option %s', (option, value, message) => {
    expect(() => createRuntime({ devices: ['fw1'], ...runtimeTrust, [option]: value } as never)).toThrow(message);
  });

  it('never shows a URL value (it may carry a password)', () => {
    expect(() => resolveRuntimeConfig({ devices: ['fw1'], amqpUrl: 'http://u:secret@x' })).toThrow(/got string/);
  });
});

describe('agent config and devices file', () => {
  it('needs an id and devices', () => {
    expect(() => resolveAgentConfig({ devices: [{ id: 'a', url: 'http://x' }] })).toThrow(/option "id" is required/);
  });

  it('reads a devices file and names the bad entry', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-cfg-'));
    const good = join(dir, 'good.json');
    writeFileSync(good, JSON.stringify({ devices: [{ id: 'fw1', url: 'http://127.0.0.1:1' }] }));
    expect(loadDevicesFile(good)).toEqual([{ id: 'fw1', url: 'http://127.0.0.1:1' }]);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ id: 'fw1', url: 'ftp://x' }]));
    expect(() => loadDevicesFile(bad)).toThrow(/devices\[0\]\.url is not an http\(s\) URL/);
    expect(() => loadDevicesFile(join(dir, 'none.json'))).toThrow(/cannot be read \(ENOENT\)/);
  });

  it('reads only BATON_* variables from the environment', () => {
    expect(fromEnv({ BATON_AMQP_URL: 'amqp://x', PATH: '/bin' })).toEqual({ amqpUrl: 'amqp://x' });
    expect(fromEnv({ BATON_SECRET: 's', BATON_SECRET_FILE: '/f', BATON_AGENT_KEY: 'k', BATON_AGENT_KEY_FILE: '/g' })).toEqual({ secret: 's', secretFile: '/f', agentKey: 'k', agentKeyFile: '/g' });
    expect(runtimeDefaults.databaseUrl).toMatch(/^postgresql:/);
  });
});

describe('the deployment secret and the agent credential', () => {
  it('a runtime without a secret is refused, saying how to make one', () => {
    expect(configError(() => resolveRuntimeConfig({ devices: ['fw1'] }))).toMatch(/option "secret" \(or "secretFile"\) is required.*npx baton secret/);
  });

  it('a short secret is refused by its length, never shown', () => {
    const msg = configError(() => resolveRuntimeConfig({ devices: ['fw1'], secret: 'hunter2-hunter2' }));
    expect(msg).toMatch(/"secret" is 15 characters long; it must have at least 32.*npx baton secret/);
    expect(msg).not.toContain('hunter2');
    expect(configError(() => resolveRuntimeConfig({ devices: ['fw1'], secret: 42 }))).toMatch(/"secret" must be a string \(got number\)/);
  });

  it('reads the secret from secretFile (without its newline), not both, and names an unreadable file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-secret-'));
    const file = join(dir, 'secret');
    writeFileSync(file, `${TEST_SECRET}\n`);
    expect(resolveRuntimeConfig({ devices: ['fw1'], secretFile: file }).secret).toBe(TEST_SECRET);
    expect(configError(() => resolveRuntimeConfig({ devices: ['fw1'], secretFile: file, secret: TEST_SECRET }))).toMatch(/"secret" or "secretFile", not both/);
    expect(configError(() => resolveRuntimeConfig({ devices: ['fw1'], secretFile: join(dir, 'none') }))).toMatch(/"secretFile": file .*none cannot be read \(ENOENT\)/);
  });

  it('an agent without its credential, with another agent\'s, or with a broken one is refused, never quoting it', () => {
    const devices = [{ id: 'fw1', url: 'http://x' }];
    expect(configError(() => resolveAgentConfig({ id: 'a1', devices }))).toMatch(/option "key" \(or "keyFile"\) is required.*npx baton agent-key a1/);
    const other = agentCredential(TEST_SECRET, 'a2');
    const msg = configError(() => resolveAgentConfig({ id: 'a1', devices, key: other }));
    expect(msg).toMatch(/credential of agent "a2", not of this agent \("a1"\).*npx baton agent-key a1/);
    expect(msg).not.toContain(other.split(':')[2]);
    const cut = agentCredential(TEST_SECRET, 'a1').slice(0, -10);
    const msg2 = configError(() => resolveAgentConfig({ id: 'a1', devices, key: cut }));
    expect(msg2).toMatch(/keys of the wrong length/);
    expect(msg2).not.toContain(cut.split(':')[2]);
    expect(resolveAgentConfig({ id: 'a1', devices, ...agentTrust('a1') }).key).toBe(agentCredential(TEST_SECRET, 'a1'));
  });
});
