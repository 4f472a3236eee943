// The device simulator and the undici device client, over loopback HTTP.
import { afterEach, describe, expect, it } from 'vitest';
import { startDeviceSimulator, type DeviceSimulator } from '../../src/devices/simulator.ts';
import { createHttpDeviceClient } from '../../src/adapters/http-device-client.ts';
import { classify } from '../../src/device-answers.ts';
import type { WireMessage } from '../../src/ports.ts';

const sims: DeviceSimulator[] = [];
afterEach(async () => {
  for (const s of sims.splice(0)) await s.close();
});
const start = async (o = {}) => {
  const s = await startDeviceSimulator(o);
  sims.push(s);
  return s;
};
const m = (seq: number, path: string, method: WireMessage['method'] = 'PUT'): WireMessage => ({ deviceId: 'd', seq, method, path, body: { seq } });

describe('device simulator + http device client', () => {
  it('applies a parent then its child, logs seq and epoch, reports its watermark', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toEqual({ kind: 'applied', status: 200 });
    expect(await client.send(dev, m(2, '/policies/p1/rules/r1'), 1)).toEqual({ kind: 'applied', status: 200 });
    expect(sim.applied.map((e) => [e.seq, e.epoch, e.path])).toEqual([[1, 1, '/policies/p1'], [2, 1, '/policies/p1/rules/r1']]);
    expect(await client.watermark(dev)).toBe(2);
    await client.close();
  });

  it('refuses a child whose parent is missing: permanent (422)', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const out = await client.send({ id: 'd', url: sim.url }, m(1, '/policies/p9/rules/r1'), 1);
    expect(out).toMatchObject({ kind: 'permanent', status: 422 });
    expect(out.kind === 'permanent' && out.response).toMatch(/parent \/policies\/p9 does not exist/);
    await client.close();
  });

  it('refuses a lower epoch than seen: fenced', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    await client.send(dev, m(1, '/policies/p1'), 2);
    expect(await client.send(dev, m(2, '/policies/p2'), 1)).toMatchObject({ kind: 'fenced', status: 409 });
    expect(sim.fencedWrites).toBe(1);
    await client.close();
  });

  it('injected errors and hangs are transient; a dead port is transient', async () => {
    const sim = await start({ faults: { errorRate: 1, errorStatus: 503 } });
    const client = createHttpDeviceClient({ timeoutMs: 200 });
    const dev = { id: 'd', url: sim.url };
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'transient', status: 503 });
    sim.setFaults({ hang: true });
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'transient', status: null, reason: expect.stringMatching(/timed out/) });
    sim.setFaults({});
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'applied' });
    const port = sim.port;
    await sim.close();
    sims.length = 0;
    expect(await client.send({ id: 'd', url: `http://127.0.0.1:${port}` }, m(2, '/policies/p2'), 1)).toMatchObject({ kind: 'transient', status: null });
    await client.close();
  });

  it('refuse: the next `count` writes are refused with `status` (permanent), then writes are accepted again; set live through POST /_sim/faults', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    const refused: number[] = [];
    sim.events.on('refused', (e: { status: number }) => refused.push(e.status));
    const set = await fetch(`${sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify({ refuse: { status: 404, count: 2 } }) });
    expect(set.status).toBe(200);
    const first = await client.send(dev, m(1, '/policies/p1'), 1);
    expect(first).toMatchObject({ kind: 'permanent', status: 404 });
    expect(first.kind === 'permanent' && first.response).toMatch(/injected refusal \(1 more to come/);
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'permanent', status: 404 });
    // the count is spent: the device is "fixed", the same message goes through
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'applied' });
    expect(await client.send(dev, m(2, '/policies/p2'), 1)).toMatchObject({ kind: 'applied' });
    expect(refused).toEqual([404, 404]);
    expect(sim.applied.map((e) => e.seq)).toEqual([1, 2]);
    await client.close();
  });

  it('refuse with match: only writes whose path contains it are refused and counted', async () => {
    const sim = await start({ faults: { refuse: { status: 422, count: 1, match: '/rules/' } } });
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    expect(await client.send(dev, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'applied' });
    expect(await client.send(dev, m(2, '/policies/p1/rules/r2'), 1)).toMatchObject({ kind: 'permanent', status: 422 });
    expect(await client.send(dev, m(2, '/policies/p1/rules/r2'), 1)).toMatchObject({ kind: 'applied' });
    expect(sim.applied.map((e) => e.seq)).toEqual([1, 2]);
    await client.close();
  });

  it('refuse: a stale epoch is fenced without using up the refusal; {} clears it', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    await client.send(dev, m(1, '/policies/p1'), 2);
    sim.setFaults({ refuse: { status: 422, count: 1 } });
    expect(await client.send(dev, m(2, '/policies/p2'), 1)).toMatchObject({ kind: 'fenced' });
    expect(await client.send(dev, m(2, '/policies/p2'), 2)).toMatchObject({ kind: 'permanent', status: 422 });
    sim.setFaults({ refuse: { status: 422, count: 5 } });
    sim.setFaults({});
    expect(await client.send(dev, m(2, '/policies/p2'), 2)).toMatchObject({ kind: 'applied' });
    await client.close();
  });

  it.each([
    [{ refuse: { status: 503, count: 1 } }, /refuse\.status must be a 4xx other than 429/],
    [{ refuse: { status: 429, count: 1 } }, /refuse\.status must be a 4xx other than 429 \(the agent takes 429 as transient\), got 429/],
    [{ refuse: { status: 400, count: 0 } }, /refuse\.count must be a whole number of writes, 1 or more, got 0/],
    [{ refuse: { status: 400 } }, /refuse\.count must be/],
    [{ refuse: { status: 400, count: 1, match: '' } }, /refuse\.match must be a non-empty part of a path, got ""/],
    [[1, 2], /faults must be a JSON object/],
  ])('refuses a malformed fault (400) and keeps the faults in force (%#)', async (faults, message) => {
    const sim = await start({ faults: { refuse: { status: 400, count: 1 } } });
    const r = await fetch(`${sim.url}/_sim/faults`, { method: 'POST', body: JSON.stringify(faults) });
    expect(r.status).toBe(400);
    expect(((await r.json()) as { error: string }).error).toMatch(message);
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    expect(await client.send({ id: 'd', url: sim.url }, m(1, '/policies/p1'), 1)).toMatchObject({ kind: 'permanent', status: 400 });
    await client.close();
  });

  it('sends the baton headers', async () => {
    const sim = await start();
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    await client.send({ id: 'd', url: sim.url }, { ...m(7, '/policies/p1'), key: 'pol-1' }, 3);
    expect(sim.applied[0]).toMatchObject({ seq: 7, epoch: 3 });
    await client.close();
  });

  it('refuses a non-numeric X-Baton-Epoch or X-Baton-Seq (400); the fence stays on', async () => {
    const sim = await start();
    const put = (path: string, headers: Record<string, string>) =>
      fetch(`${sim.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json', ...headers }, body: '{}' }).then(async (r) => ({ status: r.status, body: (await r.json()) as { error?: string } }));
    for (const epoch of ['abc', '1e3', '-1', '0x10', '', '2.5', '99999999999999999999']) {
      expect(await put('/policies/p1', { 'x-baton-seq': '1', 'x-baton-epoch': epoch })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/x-baton-epoch must be a non-negative integer/) } });
    }
    expect(await put('/policies/p1', { 'x-baton-seq': 'one', 'x-baton-epoch': '2' })).toMatchObject({ status: 400, body: { error: expect.stringMatching(/x-baton-seq must be a non-negative integer/) } });
    expect(sim.applied).toEqual([]);
    const client = createHttpDeviceClient({ timeoutMs: 1000 });
    const dev = { id: 'd', url: sim.url };
    expect(await client.send(dev, m(1, '/policies/p1'), 2)).toMatchObject({ kind: 'applied' });
    expect(await client.send(dev, m(2, '/policies/p2'), 1)).toMatchObject({ kind: 'fenced', status: 409 });
    const wm = (await (await fetch(`${sim.url}/watermark`)).json()) as { epoch: unknown };
    expect(wm.epoch).toBe(2);
    await client.close();
  });

  it('classifies answers as DESIGN.md §7 says', () => {
    expect(classify(204, {}, '')).toEqual({ kind: 'applied', status: 204 });
    expect(classify(429, {}, '').kind).toBe('transient');
    expect(classify(500, {}, '').kind).toBe('transient');
    expect(classify(409, {}, 'exists').kind).toBe('permanent');
    expect(classify(409, { 'x-baton-fenced': 'true' }, '').kind).toBe('fenced');
    expect(classify(404, {}, '').kind).toBe('permanent');
  });
});
