// What a new user does by hand in three terminals: `baton device`, `baton agent`, and the README's host script.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { spawnBaton, writeDevicesFile, type ChildHandle } from '../../src/tools/processes.ts';
import { AMQP_URL, freshDatabase, freshNamespace } from '../support/services.ts';

const children: ChildHandle[] = [];
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.kill('SIGINT');
    await c.exited;
  }
  for (const c of cleanups.splice(0)) await c().catch(() => {});
});

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const example = readFileSync(new URL('../../scripts/example-host.ts', import.meta.url), 'utf8');

function run(file: string, env: Record<string, string>): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', file], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => resolve({ code, out, err }));
  });
}

describe('the CLI by hand', () => {
  it('the README embeds the example host script as it is', () => {
    expect(readme).toContain(example.trim());
  });

  it('device, agent and the example host work together, with the secret and the credential made as the README says', async () => {
    const db = freshDatabase();
    const ns = freshNamespace();
    cleanups.push(db.drop, () => ns.drop(['edge-1']));
    const dir = mkdtempSync(join(tmpdir(), 'baton-cli-'));
    const secretFile = join(dir, 'baton.secret');
    const keyFile = join(dir, 'edge-1.key');
    const made = spawnBaton(['secret']);
    expect(await made.exited).toBe(0);
    writeFileSync(secretFile, made.stdout(), { mode: 0o600 });
    const key = spawnBaton(['agent-key', 'edge-1'], { BATON_SECRET_FILE: secretFile });
    expect(await key.exited).toBe(0);
    writeFileSync(keyFile, key.stdout(), { mode: 0o600 });

    const device = spawnBaton(['device', '--port', '0']);
    children.push(device);
    const [, url] = await device.waitForOutput(/listening on (http:\/\/\S+)/);

    const agent = spawnBaton(['agent', '--id', 'edge-1', '--devices', writeDevicesFile([{ id: 'fw1', url: url! }])], {
      BATON_AMQP_URL: AMQP_URL,
      BATON_NAMESPACE: ns.namespace,
      BATON_AGENT_KEY_FILE: keyFile,
    });
    children.push(agent);
    await agent.waitForOutput(/agent edge-1 consuming/);

    const host = await run('scripts/example-host.ts', { BATON_AMQP_URL: AMQP_URL, BATON_DATABASE_URL: db.url, BATON_NAMESPACE: ns.namespace, BATON_SECRET_FILE: secretFile });
    expect(host.err).toBe('');
    expect(host.code).toBe(0);
    expect(host.out).toMatch(/active agent: edge-1 \(epoch 1\)/);
    expect(host.out).toMatch(/durable: policy seq 1, rule seq 2/);
    expect(host.out).toMatch(/applied on fw1/);
    expect(host.out).toMatch(/refused: message\.deviceId "fw9" is not a configured device/);

    await device.waitForOutput(/applied seq=2 epoch=1 PUT \/policies\/web\/rules\/https/);
    expect(device.stdout()).toMatch(/applied seq=1 epoch=1 PUT \/policies\/web\n/);
  });

  it('explains usage errors', async () => {
    const agent = spawnBaton(['agent', '--devices', 'x.json']);
    expect(await agent.exited).toBe(1);
    expect(agent.stderr()).toMatch(/baton agent needs --id ID/);
    const bad = spawnBaton(['agent', '--bogus']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toMatch(/Unknown option '--bogus'/);
    const help = spawnBaton(['device', '--help']);
    expect(await help.exited).toBe(0);
    expect(help.stdout()).toMatch(/usage: baton device/);
  });
});
