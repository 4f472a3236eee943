// The inspector page in headless Chromium (the statecharts through a failover), /metrics, and the
// inspector's answers to bad requests. The operator's buttons: inspector-buttons.int.test.ts.
import { mkdirSync } from 'node:fs';
import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { awaitAndCheck, dispatchLoad, startCluster } from '../support/cluster.ts';
import { cleanUpAfterEach, openInspector } from '../support/inspector-page.ts';
import { runtimeTrust } from '../support/trust.ts';

const owned = cleanUpAfterEach();

/** Prometheus text format: name{labels} value, one sample a line. */
function parseMetrics(text: string): Array<{ name: string; labels: Record<string, string>; value: number }> {
  const samples = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{([^}]*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$/.exec(line);
    if (!m) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').split(',').filter(Boolean)) {
      const [k, v] = l.split('=');
      labels[k!] = JSON.parse(v!);
    }
    samples.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return samples;
}
const sum = (s: ReturnType<typeof parseMetrics>, name: string) => s.filter((x) => x.name === name).reduce((t, x) => t + x.value, 0);

describe('inspector', () => {
  it('shows the coordinator in normal, then switching → draining → replaying → normal when the active agent is killed', async () => {
    const c = owned(await startCluster({ devices: 2 }));
    const runtime = c.runtime({ inspector: { port: 0 } });
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    c.startAgent('a2');
    await new Promise<void>((resolve) => runtime.on('agent.registered', (e) => e.agentId === 'a2' && resolve()));
    const url = (await runtime.status()).inspectorUrl!;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);

    const { page, requests } = await openInspector(url);
    await page.waitForSelector('[data-machine="coordinator"] .state.active[data-state="normal"]');
    await page.waitForSelector('[data-machine="agent:a1"] .state.active[data-state="live.active"]');
    await page.waitForFunction(() => document.getElementById('f-agent')?.textContent === 'a1');

    const completed = runtime.once('switch.completed');
    await dispatchLoad(runtime, c.devices, 200);
    c.agents.get('a1')!.kill('SIGKILL');
    await completed;
    // the page keeps the coordinator's trail of states, so even a 40 ms phase is seen
    await page.waitForFunction(() => {
      const trail = [...document.querySelectorAll('[data-machine="coordinator"] .trail li')].map((li) => li.textContent);
      const i = trail.lastIndexOf('switching');
      return i > 0 && trail.slice(i).join(' ') === 'switching draining replaying normal';
    });
    await page.waitForSelector('[data-machine="coordinator"] .state.active[data-state="normal"]');
    await page.waitForFunction(() => document.getElementById('f-epoch')?.textContent === '2' && document.getElementById('f-agent')?.textContent === 'a2');
    await page.waitForSelector('#switches tbody tr');
    expect(await page.locator('#events').innerText()).toMatch(/agent\.dead/);
    mkdirSync('test-artifacts', { recursive: true });
    await page.screenshot({ path: 'test-artifacts/inspector.png', fullPage: true });
    // everything the page loaded came from baton itself
    expect(requests.every((r) => r.startsWith(url))).toBe(true);
  });

  it('/metrics parses as Prometheus text and its counters match what happened', async () => {
    const c = owned(await startCluster({ devices: 2 }));
    const runtime = c.runtime({ inspector: { port: 0 } });
    await runtime.start();
    c.startAgent('a1');
    await runtime.ready();
    const seqs = await dispatchLoad(runtime, c.devices, 300);
    const dead = runtime.once('message.dead-lettered');
    const orphan = await runtime.dispatch({ deviceId: 'fw1', method: 'PUT', path: '/policies/none/rules/r1' });
    await dead;
    await awaitAndCheck(c, seqs);
    const last = [...seqs.entries()].map(([deviceId, s]) => ({ deviceId, seq: s.at(-1)! }));
    for (const l of last) await runtime.applied(l);
    const res = await request(`${(await runtime.status()).inspectorUrl}metrics`);
    expect(res.statusCode).toBe(200);
    const samples = parseMetrics(await res.body.text());
    expect(sum(samples, 'baton_messages_dispatched_total')).toBe(301);
    expect(sum(samples, 'baton_messages_applied_total')).toBe(300);
    expect(sum(samples, 'baton_messages_dead_lettered_total')).toBe(1);
    expect(sum(samples, 'baton_messages_parked_total')).toBe(0);
    expect(sum(samples, 'baton_epoch')).toBe(1);
    expect(sum(samples, 'baton_leader')).toBe(1);
    expect(sum(samples, 'baton_device_lag')).toBe(0);
    expect(samples.find((s) => s.name === 'baton_device_watermark' && s.labels.device === 'fw1')?.value).toBeGreaterThanOrEqual(orphan.seq - 1);
    expect(samples.find((s) => s.name === 'baton_agent_state' && s.labels.agent === 'a1' && s.labels.state === 'active')?.value).toBe(1);
  });

  it('answers bad requests clearly, and needs a token when bound beyond loopback', async () => {
    const c = owned(await startCluster({ devices: 1 }));
    expect(() => c.runtime({ inspector: { port: 0, host: '0.0.0.0' } })).toThrow(/option "inspector.token" is required/);
    const runtime = c.runtime({ inspector: { port: 0, token: 's3cret' } });
    await runtime.start();
    const url = (await runtime.status()).inspectorUrl!;
    const get = async (path: string, init: { method?: string; headers?: Record<string, string> } = {}) => {
      const r = await request(url + path, init as never);
      await r.body.text();
      return r.statusCode;
    };
    expect(await get('')).toBe(401);
    expect(await get('metrics')).toBe(401);
    expect(await get('?token=wrong')).toBe(401);
    expect(await get('?token=s3cret')).toBe(200);
    expect(await get('api/machines', { headers: { authorization: 'Bearer s3cret' } })).toBe(200);
    expect(await get('nope?token=s3cret')).toBe(404);
    expect(await get('?token=s3cret', { method: 'POST' })).toBe(405);
    expect(await get('events?token=s3cret', { method: 'DELETE' })).toBe(405);
  });

  it('forwards the same inspection events to a Stately inspector over WebSocket', async () => {
    const { WebSocketServer } = await import('ws');
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((r) => wss.once('listening', r));
    const got: string[] = [];
    const seen = new Promise<void>((resolve) =>
      wss.on('connection', (ws) => ws.on('message', (m) => {
        got.push(String(m));
        if (got.some((x) => x.includes('coordinator'))) resolve();
      })),
    );
    const c = owned(await startCluster({ devices: 1 }));
    const runtime = createRuntime({ devices: c.devices, databaseUrl: c.db.url, namespace: c.namespace, ...runtimeTrust, stately: { url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}` } });
    try {
      await runtime.start();
      await seen;
      expect(got.some((x) => x.includes('@xstate.'))).toBe(true);
    } finally {
      await runtime.stop();
      wss.close();
    }
  });
});
