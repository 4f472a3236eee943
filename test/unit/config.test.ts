import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromEnv, loadDevicesFile, resolveAgentConfig, resolveRuntimeConfig, runtimeDefaults } from '../../src/config.ts';
import { createRuntime } from '../../src/runtime.ts';

describe('runtime config', () => {
  it('fills defaults and freezes', () => {
    const c = resolveRuntimeConfig({ devices: ['fw1'] });
    expect(c.checkAgentLoopTime).toBe(30_000);
    expect(c.maxMessageBytes).toBe(1024 * 1024);
    expect(c.devices).toEqual(['fw1']);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes devices as DeviceConfig objects too', () => {
    expect(resolveRuntimeConfig({ devices: [{ id: 'fw1', url: 'http://x' }] }).devices).toEqual(['fw1']);
  });

  it.each([
    ['maxUnconfirmed', 'lots', /option "maxUnconfirmed" must be an integer >= 1 \(got "lots"\)/],
    ['queueType', 'stream', /option "queueType" must be one of "classic", "quorum"/],
    ['checkAgentLoopTime', 0, /option "checkAgentLoopTime"/],
    ['amqpUrl', 'http://x', /option "amqpUrl" must be a URL starting with amqp:/],
    ['databaseUrl', 42, /option "databaseUrl"/],
    ['devices', [], /option "devices" must be a non-empty array/],
    ['colour', 'red', /unknown option "colour"/],
  ])('createRuntime fails naming the option %s', (option, value, message) => {
    expect(() => createRuntime({ devices: ['fw1'], [option]: value } as never)).toThrow(message);
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
    expect(runtimeDefaults.databaseUrl).toMatch(/^postgresql:/);
  });
});
