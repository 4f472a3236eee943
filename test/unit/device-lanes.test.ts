import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.ts';
import { DeviceLanes } from '../../src/agent/device-lanes.ts';
import { silentLogger } from '../../src/logger.ts';
import type { DeadLetter, Delivery, DeviceClient, DeviceConfig, DeviceOutcome, WireMessage } from '../../src/ports.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { encodeMessage } from '../../src/wire.ts';

const devices = new Map<string, DeviceConfig>([
  ['d1', { id: 'd1', url: 'http://d1' }],
  ['d2', { id: 'd2', url: 'http://d2' }],
]);

function delivery(m: WireMessage | null, raw?: string) {
  const d = {
    acked: false,
    nacked: null as boolean | null,
    message: m,
    raw: raw ? Buffer.from(raw) : encodeMessage(m!),
    redelivered: false,
    ack() {
      d.acked = true;
    },
    nack(requeue: boolean) {
      d.nacked = requeue;
    },
  };
  if (!m) (d as Delivery).malformed = 'body is not JSON';
  return d;
}
const msg = (deviceId: string, seq: number): WireMessage => ({ deviceId, seq, method: 'PUT', path: `/p/${seq}`, body: null });

/** A device client whose answers are scripted per device; records what was sent. */
function scripted(answer: (m: WireMessage) => DeviceOutcome | Promise<DeviceOutcome>) {
  const sent: string[] = [];
  const client: DeviceClient = {
    async send(_d, m) {
      sent.push(`${m.deviceId}:${m.seq}`);
      return answer(m);
    },
    watermark: async () => null,
    close: async () => {},
  };
  return { client, sent };
}

function lanes(client: DeviceClient, onPermanent: 'block' | 'skip' = 'block', leaseEpoch = 1) {
  const applied: string[] = [];
  const dead: DeadLetter[] = [];
  const l = new DeviceLanes({
    agentId: 'a1',
    devices,
    client,
    clock: systemClock,
    logger: silentLogger(),
    onPermanent,
    retryInitialMs: 1,
    retryMaxMs: 4,
    lease: { acquire: async () => leaseEpoch },
    applied: (d, s) => void applied.push(`${d}:${s}`),
    deadLetter: async (e) => void dead.push(e),
    fenced: () => {},
  });
  return { l, applied, dead };
}

const appliedCount = (l: DeviceLanes, n: number) =>
  new Promise<void>((resolve) => {
    let k = 0;
    l.on('applied', () => ++k === n && resolve());
  });

describe('device lanes', () => {
  it('applies each device in order and acks only after 2xx', async () => {
    const { client } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, applied } = lanes(client);
    const ds = [msg('d1', 1), msg('d2', 1), msg('d1', 2), msg('d2', 2)].map((m) => delivery(m));
    const done = appliedCount(l, 4);
    ds.forEach((d) => l.accept(d));
    await done;
    expect(applied.filter((a) => a.startsWith('d1'))).toEqual(['d1:1', 'd1:2']);
    expect(ds.every((d) => d.acked)).toBe(true);
  });

  it('holds a failing device line while the other device goes on, then resumes it in order', async () => {
    let d1Down = true;
    const { client, sent } = scripted((m) => (m.deviceId === 'd1' && d1Down ? { kind: 'transient', status: 503, reason: 'down' } : { kind: 'applied', status: 200 }));
    const { l, applied } = lanes(client);
    const d2Done = new Promise<void>((resolve) => l.on('applied', (e) => e.deviceId === 'd2' && e.seq === 3 && resolve()));
    for (let s = 1; s <= 3; s++) {
      l.accept(delivery(msg('d1', s)));
      l.accept(delivery(msg('d2', s)));
    }
    await d2Done;
    expect(applied.filter((a) => a.startsWith('d1'))).toEqual([]);
    expect(sent.filter((s) => s.startsWith('d1')).every((s) => s === 'd1:1')).toBe(true);
    await once(l, 'retry');
    const d1Done = new Promise<void>((resolve) => l.on('applied', (e) => e.deviceId === 'd1' && e.seq === 3 && resolve()));
    d1Down = false;
    await d1Done;
    expect(applied.filter((a) => a.startsWith('d1'))).toEqual(['d1:1', 'd1:2', 'd1:3']);
  });

  it('writes under the lease epoch, the one source of the fencing epoch, and names it in a dead letter', async () => {
    const epochs: number[] = [];
    const client: DeviceClient = {
      async send(_d, m, epoch) {
        epochs.push(epoch);
        return m.seq === 2 ? { kind: 'permanent', status: 422, reason: 'device answered 422', response: 'no' } : { kind: 'applied', status: 200 };
      },
      watermark: async () => null,
      close: async () => {},
    };
    const { l, dead } = lanes(client, 'skip', 7);
    const done = appliedCount(l, 2);
    [1, 2, 3].forEach((seq) => l.accept(delivery(msg('d1', seq))));
    await done;
    expect(epochs).toEqual([7, 7, 7]);
    expect(dead).toMatchObject([{ deviceId: 'd1', seq: 2, epoch: 7 }]);
  });

  it('names the lease epoch in the dead letter of a message for a device it does not know', async () => {
    const { client } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, dead } = lanes(client, 'skip', 7);
    const recorded = once(l, 'dead-letter');
    l.accept(delivery(msg('d9', 1)));
    await recorded;
    expect(dead).toMatchObject([{ deviceId: 'd9', seq: 1, epoch: 7 }]);
  });

  it('dead-letters a 4xx then blocks the line (policy block)', async () => {
    const { client } = scripted((m) => (m.seq === 1 ? { kind: 'permanent', status: 422, reason: 'device answered 422', response: 'parent missing' } : { kind: 'applied', status: 200 }));
    const { l, dead, applied } = lanes(client, 'block');
    const blocked = once(l, 'blocked');
    const ds = [delivery(msg('d1', 1)), delivery(msg('d1', 2))];
    ds.forEach((d) => l.accept(d));
    await blocked;
    expect(dead).toMatchObject([{ deviceId: 'd1', seq: 1, status: 422, response: 'parent missing' }]);
    expect(ds[0]!.acked).toBe(true);
    expect(ds[1]!.acked).toBe(false);
    expect(applied).toEqual([]);
    expect(l.snapshot().find((s) => s.deviceId === 'd1')?.blocked).toMatch(/seq 1 rejected: device answered 422/);
  });

  it('dead-letters a 4xx and goes on (policy skip)', async () => {
    const { client } = scripted((m) => (m.seq === 1 ? { kind: 'permanent', status: 404, reason: 'device answered 404', response: '' } : { kind: 'applied', status: 200 }));
    const { l, dead, applied } = lanes(client, 'skip');
    const done = appliedCount(l, 1);
    l.accept(delivery(msg('d1', 1)));
    l.accept(delivery(msg('d1', 2)));
    await done;
    expect(dead.map((d) => d.seq)).toEqual([1]);
    expect(applied).toEqual(['d1:2']);
  });

  it('dead-letters a malformed message with the reason instead of retrying it', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, dead } = lanes(client);
    const d = delivery(null, 'not json');
    const recorded = once(l, 'dead-letter');
    l.accept(d);
    await recorded;
    expect(dead[0]!.reason).toMatch(/malformed message: body is not JSON/);
    expect(dead[0]!.payload).toBe('not json');
    expect(d.acked).toBe(true);
    expect(sent).toEqual([]);
  });

  it('dead-letters a message for a device it does not know', async () => {
    const { client } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, dead } = lanes(client);
    const recorded = once(l, 'dead-letter');
    l.accept(delivery(msg('d9', 1)));
    await recorded;
    expect(dead[0]!.reason).toMatch(/not in this agent's devices file/);
  });

  it('requeues a message whose dead letter could not be recorded', async () => {
    const { client } = scripted(() => ({ kind: 'permanent', status: 400, reason: 'bad', response: '' }));
    let tried!: () => void;
    const recording = new Promise<void>((resolve) => (tried = resolve));
    const l = new DeviceLanes({
      agentId: 'a1', devices, client, clock: systemClock, logger: silentLogger(), onPermanent: 'skip', retryInitialMs: 1, retryMaxMs: 1, lease: { acquire: async () => 1 },
      applied: () => {}, deadLetter: async () => { tried(); throw new Error('broker down'); }, fenced: () => {},
    });
    const d = delivery(msg('d1', 1));
    l.accept(d);
    await recording;
    await l.stop();
    await new Promise((r) => setTimeout(r, 0));
    expect(d.acked).toBe(false);
    expect(d.nacked).toBe(true);
  });

  it('skips (acks without sending) what is at or below the watermark', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l } = lanes(client);
    l.setWatermark('d1', 2);
    const done = appliedCount(l, 1);
    const ds = [1, 2, 3].map((s) => delivery(msg('d1', s)));
    ds.forEach((d) => l.accept(d));
    await done;
    expect(sent).toEqual(['d1:3']);
    expect(ds.every((d) => d.acked)).toBe(true);
  });

  it('dead-letters as an anomaly, unsent, a seq below the watermark that nobody is known to have applied', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, dead } = lanes(client);
    const anomalies: unknown[] = [];
    l.on('anomaly', (e) => anomalies.push(e));
    const done = appliedCount(l, 5);
    for (let s = 1; s <= 5; s++) l.accept(delivery(msg('d1', s)));
    await done;
    // a renewal of the running lease says the device is at 1005 (another leader's seqs went out)
    l.setWatermark('d1', 1005, 1);
    const late = delivery(msg('d1', 6));
    const settled = Promise.race([once(l, 'dead-letter'), once(l, 'skipped')]);
    l.accept(late);
    await settled;
    expect(sent).toEqual(['d1:1', 'd1:2', 'd1:3', 'd1:4', 'd1:5']);
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ deviceId: 'd1', seq: 6, status: null });
    expect(dead[0]!.reason).toBe(
      "seq 6 is at or below device d1's applied watermark 1005 but was never applied here (nor known applied before this lease: up to 0): a seq was reused or a message overtook another; not sent",
    );
    expect(anomalies).toEqual([{ deviceId: 'd1', seq: 6, watermark: 1005, reason: dead[0]!.reason }]);
    expect(late.acked).toBe(true);
  });

  it('skips silently a redelivered copy of a seq it applied itself, and what the lease grant said was applied', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    const { l, dead } = lanes(client);
    const anomalies: unknown[] = [];
    l.on('anomaly', (e) => anomalies.push(e));
    const skipped: number[] = [];
    l.on('skipped', (e) => skipped.push(e.seq));
    let done = appliedCount(l, 3);
    for (let s = 1; s <= 3; s++) l.accept(delivery(msg('d1', s)));
    await done;
    l.setWatermark('d1', 1005, 1);
    const again = delivery(msg('d1', 2)); // a lost ack: the broker hands it out again
    l.accept(again);
    done = appliedCount(l, 1);
    l.accept(delivery(msg('d1', 1006)));
    await done;
    expect(again.acked).toBe(true);
    expect(skipped).toEqual([2]);
    expect(sent).toEqual(['d1:1', 'd1:2', 'd1:3', 'd1:1006']);
    expect(dead).toEqual([]);
    expect(anomalies).toEqual([]);
  });

  it('reports what it skips below the baseline as applied, and acks it (like an apply) once the report is out', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    client.watermark = async () => 5; // the device applied up to 5 before this lane's epoch
    const reported: string[] = [];
    const outs: Array<() => void> = [];
    const l = new DeviceLanes({
      agentId: 'a1', devices, client, clock: systemClock, logger: silentLogger(), onPermanent: 'block', retryInitialMs: 1, retryMaxMs: 1, lease: { acquire: async () => 1 },
      applied: (d, s) => (reported.push(`${d}:${s}`), new Promise<void>((resolve) => outs.push(resolve))), deadLetter: async () => {}, fenced: () => {},
    });
    const ds = [4, 6].map((s) => delivery(msg('d1', s)));
    const done = appliedCount(l, 1);
    ds.forEach((d) => l.accept(d));
    await done;
    expect(reported).toEqual(['d1:4', 'd1:6']);
    expect(sent).toEqual(['d1:6']);
    expect(ds.map((d) => d.acked)).toEqual([false, false]);
    outs.forEach((out) => out());
    await new Promise((r) => setTimeout(r, 0));
    expect(ds.map((d) => d.acked)).toEqual([true, true]);
  });

  it('acks at once on a device that does not report its watermark (a redelivery would be written twice)', async () => {
    const { client } = scripted(() => ({ kind: 'applied', status: 200 }));
    const l = new DeviceLanes({
      agentId: 'a1', devices, client, clock: systemClock, logger: silentLogger(), onPermanent: 'block', retryInitialMs: 1, retryMaxMs: 1, lease: { acquire: async () => 1 },
      applied: () => new Promise<void>(() => {}), deadLetter: async () => {}, fenced: () => {},
    });
    const d = delivery(msg('d1', 1));
    const done = appliedCount(l, 1);
    l.accept(d);
    await done;
    expect(d.acked).toBe(true);
  });

  it('gives back: the request on the wire finishes once (a 503 is not retried), the rest is left unsettled for the subscription; resume() takes work again', async () => {
    let answer!: (o: DeviceOutcome) => void;
    const { client, sent } = scripted(() => (sent.length === 1 ? new Promise<DeviceOutcome>((resolve) => (answer = resolve)) : { kind: 'applied', status: 200 }));
    const { l, applied } = lanes(client);
    const ds = [1, 2, 3].map((s) => delivery(msg('d1', s)));
    ds.forEach((d) => l.accept(d));
    await new Promise((r) => setTimeout(r, 0));
    expect(sent).toEqual(['d1:1']);
    let returned: number | null = null;
    const back = l.giveBack().then((n) => (returned = n));
    await new Promise((r) => setTimeout(r, 5));
    expect(returned).toBeNull(); // seq 1 is on the wire
    const late = delivery(msg('d1', 4));
    l.accept(late); // offered while giving back: left alone (its subscription returns it)
    answer({ kind: 'transient', status: 503, reason: 'busy' });
    await back;
    expect(returned).toBe(3);
    expect(sent).toEqual(['d1:1']);
    expect([...ds, late].map((d) => [d.acked, d.nacked])).toEqual([[false, null], [false, null], [false, null], [false, null]]);
    expect(l.holding()).toBe(0);
    l.resume();
    const done = appliedCount(l, 1);
    const again = delivery(msg('d1', 1));
    l.accept(again);
    await done;
    expect(applied).toEqual(['d1:1']);
    expect(again.acked).toBe(true);
  });

  it('gives back: acks the request on the wire when the device applied it', async () => {
    let answer!: (o: DeviceOutcome) => void;
    const { client } = scripted((m) => (m.seq === 1 ? new Promise<DeviceOutcome>((resolve) => (answer = resolve)) : { kind: 'applied', status: 200 }));
    const { l, applied } = lanes(client);
    const ds = [1, 2].map((s) => delivery(msg('d1', s)));
    ds.forEach((d) => l.accept(d));
    await new Promise((r) => setTimeout(r, 0));
    const back = l.giveBack();
    answer({ kind: 'applied', status: 200 });
    expect(await back).toBe(1);
    expect(applied).toEqual(['d1:1']);
    expect(ds.map((d) => d.acked)).toEqual([true, false]);
  });

  it('gives back at once a lane that waits for its lease (nothing on the wire)', async () => {
    const { client, sent } = scripted(() => ({ kind: 'applied', status: 200 }));
    const l = new DeviceLanes({
      agentId: 'a1', devices, client, clock: systemClock, logger: silentLogger(), onPermanent: 'block', retryInitialMs: 1, retryMaxMs: 1,
      lease: { acquire: () => new Promise<number>(() => {}) }, applied: () => {}, deadLetter: async () => {}, fenced: () => {},
    });
    [1, 2].forEach((s) => l.accept(delivery(msg('d1', s))));
    l.accept(delivery(msg('d2', 1)));
    expect(await l.giveBack()).toBe(3);
    expect(sent).toEqual([]);
  });

  it('on a device that reports its watermark, asks it again before retrying an answer it lost: a write that went through is not written twice', async () => {
    // the device applies seq 1, but its answer is lost (a timeout); then it answers /watermark
    const applied: number[] = [];
    let watermarkOk = false;
    const client: DeviceClient = {
      async send(_d, m) {
        applied.push(m.seq);
        if (m.seq === 1 && applied.length === 1) return { kind: 'transient', status: null, reason: 'timeout after 5000 ms' };
        return { kind: 'applied', status: 200 };
      },
      // at the epoch's start it answers; right after the lost answer it is briefly unreachable (asked again)
      watermark: async () => {
        if (applied.length === 0) return 0;
        if (!watermarkOk) return (watermarkOk = true), null;
        return Math.max(0, ...applied);
      },
      close: async () => {},
    };
    const { l, applied: reported, dead } = lanes(client);
    const ds = [1, 2].map((s) => delivery(msg('d1', s)));
    const done = appliedCount(l, 2);
    ds.forEach((d) => l.accept(d));
    await done;
    expect(applied).toEqual([1, 2]); // seq 1 written once
    expect(reported).toEqual(['d1:1', 'd1:2']); // and reported applied, once
    expect(ds.map((d) => d.acked)).toEqual([true, true]);
    expect(dead).toEqual([]);
  });

  it('a dead letter that cannot be recorded is handed back only after a backoff: a broker that redelivers at once is not spun on', async () => {
    const world = new World(1);
    const gate = new Gate('agent');
    const { client } = scripted(() => ({ kind: 'permanent', status: 422, reason: 'refused', response: 'no parent' }));
    let attempts = 0;
    const l = new DeviceLanes({
      agentId: 'a1', devices, client, clock: world.clock(gate), logger: silentLogger(), onPermanent: 'skip', retryInitialMs: 100, retryMaxMs: 1000,
      lease: { acquire: async () => 1 }, applied: () => {}, fenced: () => {},
      deadLetter: async () => {
        attempts++;
        throw new Error('receipts nacked by the broker');
      },
    });
    // a broker that hands a requeued message straight back
    const redeliver = (): void => {
      const d = delivery(msg('d1', 1));
      d.nack = () => void gate.run(redeliver);
      l.accept(d);
    };
    redeliver();
    world.at(1000, () => {});
    await world.run(() => false, 1000);
    // about one attempt per backoff (100 ms, doubling to 1 s), not thousands in no time
    expect(attempts).toBeGreaterThan(1);
    expect(attempts).toBeLessThan(12);
  });
});
