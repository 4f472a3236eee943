// Two real `baton serve` processes on one database and namespace, a real agent, three simulated
// devices, and three Python clients (scripts/baton_client.py through test/python/serve_driver.py),
// each sending one device's messages one at a time to the standby first (it answers 307; the client
// follows to the leader). The leading serve is killed (SIGKILL) mid-load; the standby takes over and the
// clients continue against it, retrying what the kill cut with the same Idempotency-Key.
//
// Client c1 is caught in the crash window src/serve/README.md names, on purpose: the recording of
// the answer of its message HELD is held in the database (a trigger sleeps in that UPDATE) when the
// leader is killed. Clients c2 and c3 are cut wherever the kill finds them.
//
// What holds, and is checked:
// - every message a client got a 2xx for is applied on its device exactly once (by seq), devices
//   apply seqs in rising order, and in the order each client sent;
// - a retry answered after the kill is a fresh dispatch (the dead leader had not claimed the key, or
//   had released it) or the first answer replayed (it had recorded it);
// - a message is applied twice (under two seqs) only in the crash window: the leader died after the
//   key was claimed and before its answer was recorded. The client then met a connection error and
//   409 `idempotency-key-in-flight` until the claim timed out (5 s here, --idempotency-claim-timeout;
//   30 s by default), and the retry was dispatched again. At most one such message per client (one
//   request in flight each). For c1's HELD it happens: its first attempt was accepted (it reached the
//   device) but never answered;
// - nothing else is applied: every write on a device is an accepted seq or such a first attempt;
// - a key the dead leader answered, sent again to the new one, is answered with its first seq.
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, type Cluster } from '../support/cluster.ts';
import { call, holdAnswerRecording, poll, serveProcesses } from '../support/serve-processes.ts';
import { until } from '../support/services.ts';

let cluster: Cluster | null = null;
let procs: ReturnType<typeof serveProcesses> | null = null;
let hold: Awaited<ReturnType<typeof holdAnswerRecording>> | null = null;
afterEach(async () => {
  await procs?.killAll();
  await hold?.end().catch(() => {});
  hold = null;
  await cluster?.dispose();
  cluster = procs = null;
});

/** messages per client, and how many each has had answered when the leader is killed */
const COUNT = 120;
const BEFORE_KILL = 40;
/** c1's message whose answer is being recorded when the leader dies */
const HELD = 50;

interface Answer {
  i: number;
  key: string;
  seq: number;
  status: number;
  replayed: boolean;
  cut: boolean;
  codes: string[];
}

const keyOf = (path: string) => /^\/policies\/(c\d+-\d+|warm)$/.exec(path)?.[1] ?? `unexpected path ${path}`;

describe('killing the leading baton serve mid-load', () => {
  it('the standby takes over, the clients continue, every accepted message is applied once and in order', async () => {
    const c = (cluster = await startCluster({ devices: 3 }));
    const p = (procs = serveProcesses(c));
    c.startAgent('a1');
    // a key claimed by the dead leader is taken over after 5 s (30 s by default): the test's length
    const flags = ['--idempotency-claim-timeout', '5'];
    const leader = await p.startServe('r1', flags);
    await poll(() => call('GET', `${leader.base}/v1/status`), (r) => r.json?.leading === true, 'r1 to lead');
    const standby = await p.startServe('r2', flags);

    // the standby sends a message to the leader: 307, same path, the leader in the error shape; followed there with its key
    const warm = { deviceId: 'fw1', method: 'PUT', path: '/policies/warm', body: {} };
    const moved = await poll(() => call('POST', `${standby.base}/v1/messages`, warm, { 'idempotency-key': 'warm' }), (r) => r.status !== 503, 'the standby to name the leader');
    expect(moved.status).toBe(307);
    expect(moved.headers.get('location')).toBe(`${leader.base}/v1/messages`);
    expect(moved.json.error).toMatchObject({ code: 'not-leader', details: { leader: expect.stringMatching(new RegExp(`^${leader.base}/?$`)) } });
    const followed = await call('POST', moved.headers.get('location')!, warm, { 'idempotency-key': 'warm' });
    expect(followed).toMatchObject({ status: 202, json: { deviceId: 'fw1' } });

    hold = await holdAnswerRecording(c.db.url, `c1-${HELD}`);
    const clients = c.devices.map((d, n) =>
      p.python(['test/python/serve_driver.py', 'load', '--url', standby.base, '--url', leader.base, '--device', d.id, '--prefix', `c${n + 1}`, '--count', String(COUNT)]),
    );
    await Promise.all(clients.map((cl) => cl.until((lines) => lines.filter((l) => 'i' in l).length >= BEFORE_KILL)));
    await hold.held();
    leader.kill('SIGKILL');
    expect(await leader.exited).toBe('SIGKILL');
    // the dead leader's session ends: the answer of c1-HELD is never recorded
    await hold.end();
    hold = null;
    for (const cl of clients) expect(await cl.exited, cl.stderr()).toBe(0);
    expect((await call('GET', `${standby.base}/v1/status`)).json).toMatchObject({ leading: true, runtimeId: 'r2' });

    const accepted = new Map<string, Map<number, string>>(c.devices.map((d) => [d.id, new Map()]));
    accepted.get('fw1')!.set(followed.json.seq, 'warm');
    const twice = new Set<string>(); // keys that may be applied twice: the crash window
    clients.forEach((cl, n) => {
      const lines = cl.lines<any>();
      const answers = lines.filter((l): l is Answer => 'i' in l);
      expect(answers.map((a) => a.i)).toEqual([...Array(COUNT).keys()]);
      // the client's order is seq order, and only a repeat is answered 200 (replayed)
      for (let k = 1; k < answers.length; k++) expect(answers[k]!.seq).toBeGreaterThan(answers[k - 1]!.seq);
      for (const a of answers) expect(a.status === 202 ? !a.replayed : a.status === 200 && a.replayed && a.cut).toBe(true);
      // the kill cut each client, and each continued after it, against the standby
      const firstCut = answers.findIndex((a) => a.cut);
      expect(firstCut).toBeGreaterThanOrEqual(BEFORE_KILL);
      expect(firstCut).toBeLessThan(COUNT);
      expect(lines.at(-1)).toEqual({ done: true, base: standby.base });
      // a key the dead leader accepted, sent again to the new leader: its first seq
      expect(lines.find((l) => 'again' in l)).toEqual({ again: `c${n + 1}-0`, seq: answers[0]!.seq, status: 200, replayed: true });
      const window = answers.filter((a) => a.codes.includes('idempotency-key-in-flight'));
      expect(window.length).toBeLessThanOrEqual(1);
      for (const a of window) expect(a.cut).toBe(true);
      if (n === 0) expect(window.map((a) => a.i)).toEqual([HELD]);
      for (const a of window) twice.add(a.key);
      for (const a of answers) accepted.get(c.devices[n]!.id)!.set(a.seq, a.key);
    });

    await Promise.all(
      c.sims.map((sim, n) => {
        const want = accepted.get(c.devices[n]!.id)!;
        return until(sim.events, 'applied', () => sim.applied.filter((e) => e.seq !== null && want.has(e.seq)).length >= want.size, 30_000, `every accepted seq on ${c.devices[n]!.id}`);
      }),
    );
    c.sims.forEach((sim, n) => {
      const want = accepted.get(c.devices[n]!.id)!;
      const log = sim.applied.map((e) => ({ seq: e.seq!, key: keyOf(e.path) }));
      // each accepted seq once, under its own key; seqs rising; keys in the client's order
      expect(log.filter((e) => want.has(e.seq))).toEqual([...want].sort(([a], [b]) => a - b).map(([seq, key]) => ({ seq, key })));
      for (let k = 1; k < log.length; k++) expect(log[k]!.seq).toBeGreaterThan(log[k - 1]!.seq);
      const order = log.map((e) => (e.key === 'warm' ? -1 : Number(e.key.split('-')[1])));
      expect(order).toEqual([...order].sort((a, b) => a - b));
      // nothing else but the first attempt of a key in the crash window, once
      const extra = log.filter((e) => !want.has(e.seq));
      expect(extra.every((e) => twice.has(e.key)), JSON.stringify(extra)).toBe(true);
      expect(new Set(extra.map((e) => e.key)).size).toBe(extra.length);
      // c1's first attempt of HELD: applied, its seq never answered, before the seq the retry got
      if (n === 0) {
        expect(extra).toEqual([{ seq: expect.any(Number), key: `c1-${HELD}` }]);
        const retried = [...want].find(([, key]) => key === `c1-${HELD}`)![0];
        expect(extra[0]!.seq).toBeLessThan(retried);
      }
    });
  }, 90_000); // ~20 s: the serves' start, the takeover (about 1.3 x leaderTtl), the claim timeout of c1-HELD
});
