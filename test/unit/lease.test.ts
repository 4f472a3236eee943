// The agent's lease: valid from the heartbeat a grant echoes for durationMs, and not a moment longer.
import { describe, expect, it } from 'vitest';
import { Lease, type LeaseGrant } from '../../src/lease.ts';
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
const grant = (o: Partial<LeaseGrant> = {}): LeaseGrant => ({ type: 'lease', agentId: 'a1', incarnation: 'i1', epoch: 2, echo: 1000, durationMs: 1500, watermarks: {}, ...o });

describe('Lease', () => {
  it('is valid until the echoed heartbeat time + durationMs, then lapses (writes stop)', () => {
    const clock = clockAt(1200);
    const lease = new Lease(clock, 'i1');
    expect(lease.current()).toBeNull();
    expect(lease.grant(grant())).toBe(true);
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
    const clock = clockAt(5000);
    const lease = new Lease(clock, 'i1');
    expect(lease.grant(grant({ echo: 1000 }))).toBe(false); // expired on arrival
    expect(lease.grant(grant({ echo: 4900, incarnation: 'i0' }))).toBe(false);
    expect(lease.grant(grant({ echo: 4900, epoch: 3 }))).toBe(true);
    expect(lease.grant(grant({ echo: 4950, epoch: 2 }))).toBe(false);
    expect(lease.current()).toBe(3);
  });

  it('a device that says the epoch is stale revokes it at once; acquire() waits for the next grant', async () => {
    const clock = clockAt(1200);
    const lease = new Lease(clock, 'i1');
    lease.grant(grant());
    lease.revoke();
    expect(lease.current()).toBeNull();
    let got: number | null = null;
    void lease.acquire().then((e) => (got = e));
    await Promise.resolve();
    expect(got).toBeNull();
    lease.grant(grant({ epoch: 3, echo: 1200 }));
    await Promise.resolve();
    expect(got).toBe(3);
  });
});
