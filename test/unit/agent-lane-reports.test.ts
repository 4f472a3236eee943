// Issue 15: the agent tells the truth about its device lines. Each lane keeps its condition
// (flowing, retrying, paused, blocked) as one value; `reports()` lists the lines that do not flow, and
// every heartbeat carries them (none: the heartbeat of a healthy agent is unchanged).
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DeviceLanes } from '../../src/agent/device-lanes.ts';
import { laneReports, type LaneCondition } from '../../src/agent/lane-condition.ts';
import { startAgent } from '../../src/agent/worker.ts';
import { systemClock } from '../../src/clock.ts';
import { silentLogger } from '../../src/logger.ts';
import type { Clock, DeviceClient, DeviceConfig, DeviceOutcome, WireMessage } from '../../src/ports.ts';
import { MAX_LANE_REPORTS, MAX_LANE_TEXT, parseHeartbeat, type HeartbeatEvent, type LaneReport } from '../../src/side-channel.ts';
import { agentKey, unseal } from '../../src/trust.ts';
import { encodeMessage } from '../../src/wire.ts';
import { TEST_SECRET, agentTrust, signedGrant, signedMessage } from '../support/trust.ts';
import { oneAgentGround } from '../support/agent-world.ts';

const msg = (deviceId: string, seq: number): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: null });
const delivery = (m: WireMessage) => ({ message: m, raw: encodeMessage(m), redelivered: false, acked: false, ack() {}, nack() {} });
const applied: DeviceOutcome = { kind: 'applied', status: 200 };
const busy: DeviceOutcome = { kind: 'transient', status: 503, reason: 'device answered 503' };

/** Lanes over a scripted device and a wall clock the test sets (`clock.wall`). */
function lanesWith(answer: (m: WireMessage) => DeviceOutcome, onPermanent: 'block' | 'skip' = 'block', ids = ['d1', 'd2']) {
  const devices = new Map<string, DeviceConfig>(ids.map((id) => [id, { id, url: `http://${id}` }]));
  const client: DeviceClient = { send: async (_d, m) => answer(m), watermark: async () => null, close: async () => {} };
  const clock = { ...systemClock, wall: 1000, now: () => clock.wall };
  const l = new DeviceLanes({
    agentId: 'a1',
    devices,
    client,
    clock: clock as Clock,
    logger: silentLogger(),
    onPermanent,
    retryInitialMs: 1,
    retryMaxMs: 2,
    lease: { acquire: async () => 1 },
    applied: () => {},
    deadLetter: async () => {},
    fenced: () => {},
  });
  return { l, clock };
}

describe('device lanes report the lines that do not flow', () => {
  it('a lane that retries reports retrying (attempt rising, since fixed at the first failure), then nothing once it applies', async () => {
    let down = true;
    const { l, clock } = lanesWith(() => (down ? busy : applied));
    expect(l.reports()).toEqual([]);
    l.accept(delivery(msg('d1', 4)));
    await once(l, 'retry');
    const first = l.reports();
    expect(first).toEqual([{ deviceId: 'd1', state: 'retrying', seq: 4, attempt: 1, reason: 'device answered 503', since: 1000 }]);
    clock.wall = 5000;
    await once(l, 'retry');
    await once(l, 'retry');
    const later = l.reports();
    expect(later).toMatchObject([{ deviceId: 'd1', state: 'retrying', seq: 4, since: 1000 }]);
    expect((later[0] as { attempt: number }).attempt).toBeGreaterThanOrEqual(3);
    down = false;
    await once(l, 'applied');
    expect(l.reports()).toEqual([]);
    expect(l.snapshot()).toMatchObject([{ deviceId: 'd1', blocked: null, lastApplied: 4 }]);
    await l.stop();
  });

  it('a rejected message under onPermanent=block reports blocked with its seq, the device status and answer, and what frees it', async () => {
    const { l, clock } = lanesWith((m) => (m.seq === 7 ? { kind: 'permanent', status: 422, reason: 'device answered 422', response: 'parent rule 12 missing' } : applied));
    clock.wall = 2000;
    const blocked = once(l, 'blocked');
    l.accept(delivery(msg('d1', 6)));
    l.accept(delivery(msg('d1', 7)));
    l.accept(delivery(msg('d1', 8)));
    const [event] = (await blocked) as [{ deviceId: string; seq: number; reason: string }];
    const [report] = l.reports();
    expect(report).toEqual({ deviceId: 'd1', state: 'blocked', seq: 7, status: 422, response: 'parent rule 12 missing', reason: expect.any(String), since: 2000 });
    expect(report!.reason).toMatch(/seq 7 .*422.*parent rule 12 missing/);
    expect(report!.reason).toMatch(/dead-lettered/);
    expect(report!.reason).toMatch(/until baton unblock d1 --retry \(after fixing the device\) or baton unblock d1 --skip/);
    expect(report!.reason).not.toMatch(/restart/);
    expect(event).toMatchObject({ deviceId: 'd1', seq: 7, reason: report!.reason });
    expect(l.snapshot()).toMatchObject([{ deviceId: 'd1', blocked: report!.reason, queued: 1, lastApplied: 6 }]);
    await l.stop();
  });

  it('a give-back ends the retrying (its message goes back to the broker), while a block stays', async () => {
    const { l } = lanesWith((m) => (m.deviceId === 'd1' ? busy : { kind: 'permanent', status: 403, reason: 'device answered 403', response: null }));
    const blocked = once(l, 'blocked');
    l.accept(delivery(msg('d1', 1)));
    l.accept(delivery(msg('d2', 1)));
    await once(l, 'retry');
    await blocked;
    expect(l.reports().map((r) => r.state)).toEqual(['blocked', 'retrying']);
    expect(await l.giveBack()).toBe(1);
    expect(l.reports()).toMatchObject([{ deviceId: 'd2', state: 'blocked', seq: 1, status: 403, response: null }]);
    expect(l.reports()[0]!.reason).not.toMatch(/\(""\)/);
  });

  it('a rejected message under onPermanent=skip leaves the line flowing', async () => {
    const { l } = lanesWith((m) => (m.seq === 1 ? { kind: 'permanent', status: 404, reason: 'device answered 404', response: '' } : applied), 'skip');
    const done = once(l, 'applied');
    l.accept(delivery(msg('d1', 1)));
    l.accept(delivery(msg('d1', 2)));
    await done;
    expect(l.reports()).toEqual([]);
  });

  it('lists blocked lines first, then retrying ones, each the oldest first, from lanes over several devices', async () => {
    const { l, clock } = lanesWith((m) => (m.deviceId === 'b1' || m.deviceId === 'b2' ? { kind: 'permanent', status: 400, reason: 'device answered 400', response: 'bad' } : busy), 'block', ['b1', 'b2', 'r1', 'r2']);
    const at = async (t: number, deviceId: string, event: string) => {
      clock.wall = t;
      const seen = new Promise<void>((resolve) => l.on(event, (e: { deviceId: string }) => e.deviceId === deviceId && resolve()));
      l.accept(delivery(msg(deviceId, 1)));
      await seen;
    };
    await at(100, 'r2', 'retry');
    await at(200, 'b2', 'blocked');
    await at(300, 'r1', 'retry');
    await at(400, 'b1', 'blocked');
    expect(l.reports().map((r) => `${r.state} ${r.deviceId} ${r.since}`)).toEqual(['blocked b2 200', 'blocked b1 400', 'retrying r2 100', 'retrying r1 300']);
    await l.stop();
  });
});

describe('laneReports', () => {
  const retrying = (since: number): LaneCondition => ({ state: 'retrying', seq: 1, attempt: 2, reason: 'r', since });
  const blocked = (since: number, text = 'x'): LaneCondition => ({ state: 'blocked', seq: 1, status: 409, response: text, reason: text, since });

  it('skips flowing lanes, keeps at most MAX_LANE_REPORTS (the worst), and cuts texts to MAX_LANE_TEXT', () => {
    const lanes = [
      ...Array.from({ length: MAX_LANE_REPORTS }, (_, i) => ({ deviceId: `r${i}`, condition: retrying(i) })),
      { deviceId: 'f', condition: { state: 'flowing' } as LaneCondition },
      { deviceId: 'b', condition: blocked(9999, 'y'.repeat(10_000)) },
    ];
    const reports = laneReports(lanes);
    expect(reports).toHaveLength(MAX_LANE_REPORTS);
    expect(reports[0]).toMatchObject({ deviceId: 'b', state: 'blocked' });
    expect(reports.map((r) => r.deviceId)).not.toContain('f');
    // the newest retrying line is the one left out
    expect(reports.at(-1)).toMatchObject({ deviceId: `r${MAX_LANE_REPORTS - 2}` });
    const b = reports[0] as Extract<LaneReport, { state: 'blocked' }>;
    expect(b.reason).toHaveLength(MAX_LANE_TEXT);
    expect(b.response).toHaveLength(MAX_LANE_TEXT);
  });
});

/** One agent over the in-memory broker on a simulated clock; the test plays the runtime, granting leases and keeping the heartbeats it hears. */
async function agentWorld(answer: (m: WireMessage) => DeviceOutcome) {
  const { world, gate, conn, runtime, queue } = await oneAgentGround();
  const client: DeviceClient = {
    send: (_d, m) => new Promise((resolve) => world.at(world.now + 2, () => gate.run(() => resolve(answer(m))))),
    watermark: async () => null,
    close: async () => {},
  };
  const beats: HeartbeatEvent[] = [];
  const raw: Array<Record<string, unknown>> = [];
  await runtime.subscribeEvents('heartbeats', (p) => {
    const sealed = unseal((id) => agentKey(TEST_SECRET, id), 'heartbeats', p);
    if ('invalid' in sealed) throw new Error(sealed.invalid);
    const h = parseHeartbeat(sealed.event);
    if ('invalid' in h) throw new Error(h.invalid);
    raw.push(sealed.event);
    beats.push(h);
    void runtime.publishEvent('control', signedGrant(h.agentId, { incarnation: h.incarnation, epoch: 1, beat: h.beat, durationMs: 1500, watermarks: {} }), { key: h.agentId });
  });
  const agent = await startAgent(
    { id: 'a1', devices: [{ id: 'd1', url: 'http://d1.sim' }, { id: 'd2', url: 'http://d2.sim' }], namespace: 't', ...agentTrust('a1'), heartbeatInterval: 250, retryInitialMs: 20, retryMaxMs: 100 },
    { broker: conn, deviceClient: client, clock: world.clock(gate), incarnation: 'a1#1' },
  );
  const until = (t: number) => (world.at(t, () => {}), world.run(() => false, t));
  const publish = (deviceId: string, seq: number) => runtime.publish(queue, signedMessage(msg(deviceId, seq)));
  return { agent, beats, raw, until, publish };
}

describe('the heartbeat of an agent', () => {
  it('carries no lanes while every line flows: its wire form is as before', async () => {
    const t = await agentWorld(() => applied);
    for (let s = 1; s <= 3; s++) await t.publish('d1', s);
    await t.until(1200);
    expect(t.beats.length).toBeGreaterThan(3);
    expect(t.raw.every((b) => !('lanes' in b))).toBe(true);
    expect(Object.keys(t.raw.at(-1)!).sort()).toEqual(['agentId', 'beat', 'host', 'incarnation', 'pid', 'sentAt', 'type']);
    await t.agent.stop();
  });

  it('carries the lines that retry and those blocked, then none once they flow again', async () => {
    let d2Down = true;
    const t = await agentWorld((m) => (m.deviceId === 'd1' && m.seq === 2 ? { kind: 'permanent', status: 409, reason: 'device answered 409', response: 'conflict' } : m.deviceId === 'd2' && d2Down ? busy : applied));
    await t.until(300);
    for (let s = 1; s <= 3; s++) await t.publish('d1', s);
    await t.publish('d2', 1);
    await t.until(1500);
    const lanes = t.beats.at(-1)!.lanes!;
    expect(lanes).toMatchObject([
      { deviceId: 'd1', state: 'blocked', seq: 2, status: 409, response: 'conflict', reason: expect.stringMatching(/seq 2/) },
      { deviceId: 'd2', state: 'retrying', seq: 1, reason: 'device answered 503' },
    ]);
    const d2Since = lanes[1]!.since;
    expect(lanes[1]!.since).toBeLessThan(t.beats.at(-1)!.sentAt);
    d2Down = false;
    await t.until(2500);
    // the retrying line applied: only the blocked one is left (it stays until a line order frees it)
    expect(t.beats.at(-1)!.lanes).toMatchObject([{ deviceId: 'd1', state: 'blocked', seq: 2 }]);
    expect(t.beats.some((b) => b.lanes?.some((l) => l.deviceId === 'd2' && l.state === 'retrying' && l.since === d2Since && l.attempt > 1))).toBe(true);
    await t.agent.stop();
  });
});
