// A planned handover's catch-up (src/runtime/catch-up.ts): done once every seq sent straight to an
// agent's queue is settled, on the lines that flow; parked seqs and held lines are not waited for.
import { describe, expect, it } from 'vitest';
import type { DeviceState } from '../../src/api.ts';
import { AppliedLedger } from '../../src/runtime/applied-ledger.ts';
import { CatchUp } from '../../src/runtime/catch-up.ts';

function rig() {
  const ledger = new AppliedLedger();
  const states = new Map<string, DeviceState>();
  const c = new CatchUp({ ledger, lineState: (id) => states.get(id) ?? 'flowing' });
  const send = (id: string, seq: number) => (ledger.dispatched(id, seq), c.sent(id, seq));
  const apply = (id: string, from: number, to: number) => (ledger.applied(id, from, to), c.accounted(id));
  let done = false;
  const wait = (signal?: AbortSignal) => c.caughtUp(signal).then(() => void (done = true));
  return { ledger, states, c, send, apply, wait, done: () => done };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('catch-up', () => {
  it('resolves once every seq sent is applied or dead-lettered, not before', async () => {
    const r = rig();
    for (let s = 1; s <= 3; s++) r.send('d1', s);
    r.send('d2', 1);
    void r.wait();
    r.apply('d1', 1, 2);
    r.apply('d2', 1, 1);
    await tick();
    expect(r.done()).toBe(false);
    r.ledger.deadLettered('d1', 3);
    r.c.accounted('d1');
    await tick();
    expect(r.done()).toBe(true);
  });

  it('does not wait for parked seqs (never sent to the old agent) nor for held lines', async () => {
    const r = rig();
    r.send('d1', 1);
    r.ledger.dispatched('d1', 2); // parked: outstanding, never sent
    r.send('d2', 1);
    r.states.set('d2', 'blocked');
    r.send('d3', 1);
    void r.wait();
    r.apply('d1', 1, 1);
    await tick();
    expect(r.done()).toBe(false); // d3 flows and is outstanding
    r.states.set('d3', 'retrying');
    r.c.accounted('d3');
    await tick();
    expect(r.done()).toBe(true);
  });

  it('resolves at once with nothing outstanding, and when the wait is given up (abort)', async () => {
    const r = rig();
    await r.wait();
    expect(r.done()).toBe(true);
    const s = rig();
    s.send('d1', 1);
    const ac = new AbortController();
    void s.wait(ac.signal);
    await tick();
    expect(s.done()).toBe(false);
    ac.abort();
    await tick();
    expect(s.done()).toBe(true);
  });
});
