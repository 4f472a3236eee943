// The Python client (scripts/baton_client.py, run by the machine's python3) against a real `baton serve`
// bound beyond loopback with tokens, a real agent process and the device simulator: the README's demo
// (a policy and its rules, one retried with the same key, waited until applied, the events read), then
// the refusals in the one error shape and an action audited with the token's label.
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { call, serveProcesses, writeTokensFile } from '../support/serve-processes.ts';

let cluster: Cluster | null = null;
let procs: ReturnType<typeof serveProcesses> | null = null;
afterEach(async () => {
  await procs?.killAll();
  await cluster?.dispose();
  cluster = procs = null;
});

const TOKEN = 'py-client-token-0123456789';

describe('baton serve and the Python client', () => {
  it('dispatches a policy and its rules in order, a retry with the same key applied once, events read; no token refused; the audit names the token', async () => {
    const c = (cluster = await startCluster({ devices: 1 }));
    const p = (procs = serveProcesses(c));
    c.startAgent('a1');
    const serve = await p.startServe('r1', ['--host', '0.0.0.0', '--tokens', writeTokensFile({ noc: TOKEN })]);
    // bound to every address: it is reached on loopback here, the URL it printed names 0.0.0.0
    const base = serve.base.replace('0.0.0.0', '127.0.0.1');

    // the README's invocation, on this server's port (its default: 3 rules)
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain('BATON_TOKEN=s3cret python3 scripts/baton_client.py --url http://127.0.0.1:7443 --device fw1\n');
    const demo = p.python(['scripts/baton_client.py', '--url', base, '--device', 'fw1'], { BATON_TOKEN: TOKEN });
    expect(await demo.exited, demo.stderr()).toBe(0);
    const out = demo.stdout();
    const accepted = [...out.matchAll(/^accepted PUT (\S+) as seq (\d+)$/gm)].map((m) => ({ path: m[1]!, seq: Number(m[2]) }));
    expect(accepted.map((a) => a.path.replace(/demo-[0-9a-f]+/, 'P'))).toEqual(['/policies/P', '/policies/P/rules/r1', '/policies/P/rules/r2', '/policies/P/rules/r3']);
    expect(out).toContain(`retried ${accepted[1]!.path} with the same key: seq ${accepted[1]!.seq} (replayed: True)`);
    expect(out).toContain(`applied: seqs [${accepted.map((a) => a.seq).join(', ')}] on fw1`);
    // the events it read over SSE: applied runs of fw1 that cover the last seq
    const applied = [...out.matchAll(/^event (\S+) applied (\{.*\})$/gm)].map((m) => ({ id: m[1]!, ...(JSON.parse(m[2]!) as { deviceId: string; from: number; to: number }) }));
    expect(applied.some((e) => e.deviceId === 'fw1' && e.from <= accepted[3]!.seq && accepted[3]!.seq <= e.to), out).toBe(true);
    // the device's own log: the four writes, in order, the retried one once
    expect(c.sims[0]!.applied.map((e) => ({ path: e.path, seq: e.seq }))).toEqual(accepted);

    const driver = p.python(['test/python/serve_driver.py', 'checks', '--url', base, '--token', TOKEN, '--device', 'fw1']);
    expect(await driver.exited, driver.stderr()).toBe(0);
    const [checks] = driver.lines<any>();
    expect(checks.noToken).toMatchObject({ status: 401, code: 'unauthorized', message: expect.stringContaining('Authorization: Bearer') });
    // what dispatch() answers for a device that is not configured, in the one shape
    expect(checks.unknownDevice).toMatchObject({ status: 400, code: 'invalid-message', message: expect.stringContaining('"ghost" is not a configured device') });
    expect(checks.pause).toMatchObject({ action: 'pause', target: 'fw1', outcome: 'done' });
    expect(checks.resume).toMatchObject({ action: 'resume', target: 'fw1', outcome: 'done' });
    expect(checks.audit.slice(0, 2)).toMatchObject([
      { action: 'resume', target: 'fw1', by: 'token:noc' },
      { action: 'pause', target: 'fw1', by: 'token:noc' },
    ]);
    // the raw answer without a token: 401 in the one error shape, with the challenge
    const raw = await call('GET', `${base}/v1/status`);
    expect(raw).toMatchObject({ status: 401, json: { error: { code: 'unauthorized', details: {} } } });
    expect(raw.headers.get('www-authenticate')).toBe('Bearer');
    // nothing more reached the device
    expect(c.sims[0]!.applied).toHaveLength(4);
    // SIGTERM: a graceful stop, exit 0
    serve.kill('SIGTERM');
    expect(await serve.exited, serve.stderr()).toBe(0);
    expect(serve.stdout()).toContain('baton serve stopped');
  });
});
