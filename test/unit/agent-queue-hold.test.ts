// The agent's hold on its queue (src/agent/queue-hold.ts): every transition of its pure function,
// and every event that means nothing in a mode.
import { describe, expect, it } from 'vitest';
import type { Subscription } from '../../src/ports.ts';
import { CONSUMER_LOST, transition, type Hold, type HoldEvent } from '../../src/agent/queue-hold.ts';

const consuming = (): Hold => ({ mode: 'consuming', sub: new Promise<Subscription>(() => {}) });
const releasing = (afterwards: 'released' | 'consuming' = 'released'): Hold => ({ mode: 'releasing', done: new Promise<void>(() => {}), afterwards });
const released: Hold = { mode: 'released' };
const stopped: Hold = { mode: 'stopped' };

describe('agent queue hold', () => {
  it('released: a grant makes it consume; nothing else but stop moves it', () => {
    expect(transition(released, { type: 'lease.granted' })).toEqual({ to: 'consuming', from: 'released' });
    expect(transition(released, { type: 'give-back', why: 'x' })).toBeNull();
    expect(transition(released, { type: 'consumer.lost', of: consuming() })).toBeNull();
    expect(transition(released, { type: 'consumer.failed', of: consuming() })).toBeNull();
    expect(transition(released, { type: 'stop' })).toEqual({ to: 'stopped' });
  });

  it('consuming: a give-back or the loss of this consumer releases; its failure leaves it released; a grant changes nothing', () => {
    const h = consuming();
    expect(transition(h, { type: 'give-back', why: 'lease lapsed' })).toEqual({ to: 'releasing', why: 'lease lapsed' });
    expect(transition(h, { type: 'consumer.lost', of: h })).toEqual({ to: 'releasing', why: CONSUMER_LOST });
    expect(transition(h, { type: 'consumer.failed', of: h })).toEqual({ to: 'released', from: 'consuming' });
    expect(transition(h, { type: 'lease.granted' })).toBeNull();
    expect(transition(h, { type: 'stop' })).toEqual({ to: 'stopped' });
  });

  it('consuming: the events of an older consumer are left alone', () => {
    const older = consuming();
    const h = consuming();
    expect(transition(h, { type: 'consumer.lost', of: older })).toBeNull();
    expect(transition(h, { type: 'consumer.failed', of: older })).toBeNull();
    expect(transition(h, { type: 'released', of: releasing(), leased: true })).toBeNull();
  });

  it('releasing: a grant makes it consume once released; the end of this release then consumes if the lease is still valid', () => {
    const plain = releasing();
    expect(transition(plain, { type: 'lease.granted' })).toEqual({ to: 'releasing', afterwards: 'consuming' });
    expect(transition(plain, { type: 'released', of: plain, leased: true })).toEqual({ to: 'released', from: 'releasing' });
    const granted = releasing('consuming');
    expect(transition(granted, { type: 'released', of: granted, leased: true })).toEqual({ to: 'consuming', from: 'releasing' });
    expect(transition(granted, { type: 'released', of: granted, leased: false })).toEqual({ to: 'released', from: 'releasing' });
    expect(transition(granted, { type: 'released', of: releasing('consuming'), leased: true })).toBeNull();
    expect(transition(granted, { type: 'give-back', why: 'x' })).toBeNull();
    expect(transition(granted, { type: 'stop' })).toEqual({ to: 'stopped' });
  });

  it('stopped: every event is ignored', () => {
    const events: HoldEvent[] = [
      { type: 'lease.granted' },
      { type: 'give-back', why: 'x' },
      { type: 'consumer.lost', of: stopped },
      { type: 'consumer.failed', of: stopped },
      { type: 'released', of: stopped, leased: true },
      { type: 'stop' },
    ];
    for (const e of events) expect(transition(stopped, e)).toBeNull();
  });
});
