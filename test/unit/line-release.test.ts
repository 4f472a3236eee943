// The release of a device's line (line-release.ts), over fakes whose timing the test sets: it
// publishes the retried message first, then the line's parked rows in order, and lets the line flow
// only once a fetch found no row while no park of the device was under way or began meanwhile
// (a row parked in between would otherwise be stranded); it runs only while the dispatcher sends.
import { describe, expect, it } from 'vitest';
import type { ParkedRow, WireMessage } from '../../src/ports.ts';
import { LineRelease } from '../../src/runtime/line-release.ts';
import { ReplayChain } from '../../src/runtime/replay-chain.ts';
import { silentLogger } from '../../src/logger.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { encodeMessage } from '../../src/wire.ts';
import { TEST_SECRET } from '../support/trust.ts';
import { streamKey } from '../../src/trust.ts';

const msg = (seq: number): WireMessage => ({ deviceId: 'fw1', seq, method: 'PUT', path: `/p/${seq}`, body: null });

function rig(o: { retry?: { seq: number; n: number } } = {}) {
  const rows: ParkedRow[] = [];
  let nextId = 1;
  const add = (seq: number) => rows.push({ id: nextId++, message: msg(seq) });
  const published: number[] = [];
  let releasing = true;
  let retry = o.retry ?? null;
  let sending: { agentId: string; queue: string; epoch: number } | null = { agentId: 'a1', queue: 'q.a1', epoch: 1 };
  /** runs once, inside fetch number `at`, before it answers (a park racing the fetch) */
  let duringFetch: { at: number; run: () => Promise<unknown> } | null = null;
  let fetches = 0;
  const parks: Array<Promise<unknown>> = [];
  const release: LineRelease = new LineRelease({
    lines: {
      isReleasing: () => releasing,
      heldByOrder: () => false,
      endRelease: () => void (releasing = false),
      retryToPublish: () => retry,
      retryPublished: () => void (retry = null),
      releasingDevices: () => (releasing ? ['fw1'] : []),
    },
    chain: new ReplayChain(),
    store: {
      // the rows the fetch sees are those there when it begins; a park under way lands after it
      async fetchParked(limit, f) {
        const seen = rows.filter((r) => r.message.deviceId === f?.deviceId).slice(0, limit);
        if (++fetches === duringFetch?.at) await duringFetch.run();
        return seen;
      },
      async deleteParked(ids) {
        for (const id of ids) rows.splice(rows.findIndex((r) => r.id === id), 1);
      },
      async findDeadLetter(deviceId, seq) {
        return { id: 9, deviceId, seq, epoch: 1, agentId: 'a1', reason: 'r', status: 422, response: null, payload: encodeMessage(msg(seq)).toString(), at: 0, resolution: null };
      },
    },
    broker: { publish: async (_q, m) => void published.push(m.seq) },
    parker: { flush: () => Promise.all(parks).then(() => {}), replaying: () => {} },
    accounting: { outstanding: () => {} },
    leadership: { whileThisTerm: () => () => null },
    sendingTo: () => sending,
    streamK: streamKey(TEST_SECRET),
    batchSize: 2,
    retryDelayMs: 100,
    clock: new World(1).clock(new Gate('r')),
    log: silentLogger(),
  });
  /** a park of `seq` that commits when `commit` is called */
  const park = () => {
    let commit!: () => void;
    const p = new Promise<void>((r) => (commit = r));
    parks.push(p);
    release.parking('fw1', p);
    return (seq: number) => (add(seq), commit());
  };
  const ended = () => !releasing;
  const until = async (done: () => boolean) => {
    for (let i = 0; i < 100 && !done(); i++) await new Promise((r) => setImmediate(r));
  };
  return { rows, add, published, release, park, ended, until, setSending: (s: typeof sending) => (sending = s), setDuringFetch: (at: number, run: () => Promise<unknown>) => (duringFetch = { at, run }) };
}

describe("the release of a device's line", () => {
  it('publishes the retried message first, then the parked rows in order, then lets the line flow', async () => {
    const c = rig({ retry: { seq: 2, n: 1 } });
    for (const s of [4, 5, 6]) c.add(s);
    c.release.request('fw1');
    await c.until(c.ended);
    expect(c.published).toEqual([2, 4, 5, 6]);
    expect(c.rows).toEqual([]);
    expect(c.ended()).toBe(true);
  });

  it('a park under way when the fetch begins: the line does not flow before that row is out', async () => {
    const c = rig();
    c.add(4);
    const commit = c.park();
    c.release.request('fw1');
    await c.until(() => c.published.length === 1);
    expect(c.ended()).toBe(false);
    commit(5);
    await c.until(c.ended);
    expect(c.published).toEqual([4, 5]);
  });

  it('a park that begins and commits while the fetch runs (unseen by it): the line does not flow past it', async () => {
    const c = rig();
    c.add(4);
    // the second fetch (finding nothing) is overtaken by a park of seq 5 that begins and commits under it
    c.setDuringFetch(2, async () => {
      const commit = c.park();
      commit(5);
      await Promise.resolve();
    });
    c.release.request('fw1');
    await c.until(c.ended);
    expect(c.published).toEqual([4, 5]);
    expect(c.rows).toEqual([]);
  });

  it('runs only while the dispatcher sends: otherwise the line stays being released until it sends again', async () => {
    const c = rig();
    c.add(4);
    c.setSending(null);
    c.release.request('fw1');
    await c.until(() => false);
    expect(c.published).toEqual([]);
    expect(c.ended()).toBe(false);
    c.setSending({ agentId: 'a2', queue: 'q.a2', epoch: 2 });
    c.release.onSending();
    await c.until(c.ended);
    expect(c.published).toEqual([4]);
  });
});
