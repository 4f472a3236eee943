// The agent's lease: valid from the heartbeat a grant answers for durationMs, and not a moment
// longer, by the agent's own clock (the grant names the heartbeat, not a time).
import { describe, expect, it } from 'vitest';
import { Lease } from '../../src/agent/lease.ts';
import { type LeaseGrant } from '../../src/side-channel.ts';
import type { Clock } from '../../src/ports.ts';

function clockAt(start: number): Clock & { t: number } {
  const c = {
    t: start,
    now: () => c.t,
    monotonic: () => c.t,
    setTimeout: () => ({ cancel() {} }),
  };
  return c;
}
const grant = (o: Partial<LeaseGrant> = {}): LeaseGrant => ({ type: 'lease', agentId: 'a1', incarnation: 'i1', epoch: 2, beat: 1, durationMs: 1500, watermarks: {}, ...o });
/** sends heartbeats at these times; returns their beats */
const beatsAt = (clock: Clock & { t: number }, lease: Lease, ...times: number[]) =>
  times.map((t) => {
    clock.t = t;
    return lease.beat();
  });

describe('Lease', () => {
  it('is valid until the answered heartbeat was sent + durationMs, then lapses (writes stop)', () => {
    const clock = clockAt(0);
    const lease = new Lease(clock, 'i1');
    const [beat] = beatsAt(clock, lease, 1000);
    clock.t = 1200;
    expect(lease.current()).toBeNull();
    expect(lease.grant(grant({ beat }))).toBe(true);
    expect(lease.current()).toBe(2);
    clock.t = 2499;
    expect(lease.current()).toBe(2);
    clock.t = 2500;
    expect(lease.current()).toBeNull();
    expect(lease.lapsedFor()).toBe(0);
    clock.t = 3000;
    expect(lease.lapsedFor()).toBe(500);
  });

  it('refuses a grant read too late (after SIGCONT), from another process, or from a lower epoch', () => {
    const clock = clockAt(0);
    const lease = new Lease(clock, 'i1');
    const [old, recent, last] = beatsAt(clock, lease, 1000, 4900, 4950);
    clock.t = 5000;
    expect(lease.grant(grant({ beat: old }))).toBe(false); // expired on arrival
    expect(lease.grant(grant({ beat: recent, incarnation: 'i0' }))).toBe(false);
    expect(lease.grant(grant({ beat: recent, epoch: 3 }))).toBe(true);
    expect(lease.grant(grant({ beat: last, epoch: 2 }))).toBe(false);
    expect(lease.current()).toBe(3);
  });

  it('refuses a grant for a heartbeat it never sent (a forged beat, whatever its duration) or older than the last grant taken', () => {
    const clock = clockAt(0);
    const lease = new Lease(clock, 'i1');
    const [b1, b2] = beatsAt(clock, lease, 1000, 1250);
    clock.t = 1300;
    expect(lease.grant(grant({ beat: b2! + 1e9, durationMs: 1e12 }))).toBe(false);
    expect(lease.grant(grant({ beat: b2 }))).toBe(true);
    expect(lease.grant(grant({ beat: b1, epoch: 5 }))).toBe(false); // a replay of an older grant
    expect(lease.grant(grant({ beat: b2 }))).toBe(true); // the same heartbeat answered again (a new target)
    expect(lease.current()).toBe(2);
    clock.t = 1250 + 1500;
    expect(lease.current()).toBeNull();
  });

  it('a device that says the epoch is stale revokes it at once; acquire() waits for the next grant', async () => {
    const clock = clockAt(0);
    const lease = new Lease(clock, 'i1');
    const [beat] = beatsAt(clock, lease, 1200);
    lease.grant(grant({ beat }));
    lease.revoke();
    expect(lease.current()).toBeNull();
    let got: number | null = null;
    void lease.acquire().then((e) => (got = e));
    await Promise.resolve();
    expect(got).toBeNull();
    lease.grant(grant({ epoch: 3, beat }));
    await Promise.resolve();
    expect(got).toBe(3);
  });
});
