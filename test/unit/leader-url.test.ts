// runtime.leader(): who leads and the base URL it advertised (option `advertise`), as the leader
// itself and a standby on the same database see it, across a change of leader; the option's check.
import { describe, expect, it } from 'vitest';
import { resolveRuntimeConfig } from '../../src/config.ts';
import { simCluster } from '../support/sim-cluster.ts';
import { runtimeTrust } from '../support/trust.ts';

describe('runtime.leader()', () => {
  it('the leader names itself and its URL; a standby names the leader and its URL; after the leader dies, the new one', async () => {
    const c = simCluster({ seed: 3, devices: 1 });
    const r1 = await c.runtime('r1', { advertise: 'http://10.0.0.1:8080' });
    const r2 = await c.runtime('r2', { advertise: 'https://10.0.0.2:8443' });
    await c.world.run(() => r2.leader() !== null, c.world.now + 5000);
    expect(r1.leader()).toEqual({ id: 'r1', url: 'http://10.0.0.1:8080' });
    expect(r2.leader()).toEqual({ id: 'r1', url: 'http://10.0.0.1:8080' });

    c.kill('r1');
    let r2Leads = false;
    r2.on('leader.won', () => (r2Leads = true));
    expect(await c.world.run(() => r2Leads, c.world.now + 20_000)).toBe(true);
    expect(r2.leader()).toEqual({ id: 'r2', url: 'https://10.0.0.2:8443' });
    // a third runtime, started without advertising, learns r2's URL from the row
    const r3 = await c.runtime('r3');
    await c.world.run(() => r3.leader() !== null, c.world.now + 5000);
    expect(r3.leader()).toEqual({ id: 'r2', url: 'https://10.0.0.2:8443' });
    c.killAll();
  });

  it('a leader that advertises nothing is named with url null; advertise() sets the URL later (a server that knows it once it listens): the leader names it at once, a standby after the next renewal', async () => {
    const c = simCluster({ seed: 8, devices: 1 });
    const r1 = await c.runtime('r1');
    const r2 = await c.runtime('r2');
    await c.world.run(() => r2.leader() !== null, c.world.now + 5000);
    expect(r2.leader()).toEqual({ id: 'r1', url: null });
    expect(r1.leader()).toEqual({ id: 'r1', url: null });
    r1.advertise('http://127.0.0.1:41234');
    expect(r1.leader()).toEqual({ id: 'r1', url: 'http://127.0.0.1:41234' });
    // both renew and ask every third of leaderTtl (5 s by default)
    expect(await c.world.run(() => r2.leader()?.url !== null, c.world.now + 5000)).toBe(true);
    expect(r2.leader()).toEqual({ id: 'r1', url: 'http://127.0.0.1:41234' });
    expect(() => r1.advertise('http://u:pw@h')).toThrow('advertise(): the URL must be a base URL without credentials, query or fragment (got string); nothing changed');
    expect(r1.leader()?.url).toBe('http://127.0.0.1:41234');
    c.killAll();
  });

  it('option advertise: an http(s) base URL, without credentials (never quoted), query or fragment', () => {
    const base = { devices: ['fw1'], ...runtimeTrust };
    expect(resolveRuntimeConfig(base).advertise).toBeNull();
    expect(resolveRuntimeConfig({ ...base, advertise: 'http://h:8080' }).advertise).toBe('http://h:8080');
    expect(() => resolveRuntimeConfig({ ...base, advertise: 'ftp://h' })).toThrow('option "advertise" must be a URL starting with http: or https: (got string)');
    expect(() => resolveRuntimeConfig({ ...base, advertise: 'http://u:secret@h' })).toThrow(/option "advertise" must be a base URL without credentials, query or fragment \(got string\)$/);
    expect(() => resolveRuntimeConfig({ ...base, advertise: 'http://h/?x=1' })).toThrow('without credentials, query or fragment');
  });
});
