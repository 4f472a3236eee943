// Runtimes over the in-memory broker and store with a hand-driven agent a1: its heartbeats, the
// deliveries of its queue (acked at once), the grants it is sent, the receipts it sends. For the
// tests of line orders (pause, resume, unblock) at the runtime's edge.
import { MemoryRabbit, type MemoryConnection } from '../../src/adapters/memory/broker.ts';
import { createMemoryStore } from '../../src/adapters/memory/store.ts';
import type { Runtime } from '../../src/api.ts';
import type { Store, WireMessage } from '../../src/ports.ts';
import { createRuntime } from '../../src/runtime/runtime.ts';
import { parseGrant, type LaneReport, type LeaseGrant } from '../../src/side-channel.ts';
import { Gate, World } from '../../src/tools/sim/world.ts';
import { agentKey, seal, unseal } from '../../src/trust.ts';
import { encodeMessage } from '../../src/wire.ts';
import { runtimeTrust, signedReceipt, TEST_SECRET } from './trust.ts';

export interface LineRig {
  world: World;
  store: Store;
  /** the runtimes started, by id */
  runtimes: Map<string, { runtime: Runtime; gate: Gate; conn: MemoryConnection }>;
  start(id: string): Promise<Runtime>;
  kill(id: string): void;
  /** what agent a1's queue delivered, in order */
  deliveries: WireMessage[];
  /** the grants a1 was sent, in order */
  grants: LeaseGrant[];
  heartbeat(lanes?: LaneReport[]): Promise<void>;
  receipt(r: object, epoch?: number): Promise<void>;
  /** dispatches `n` messages to `deviceId` through `r`, awaits them; their seqs */
  dispatch(r: Runtime, deviceId: string, n: number): Promise<number[]>;
  /** the dead-letter receipt of a delivered message, as an agent that blocks its line sends it */
  refuse(m: WireMessage, opts?: { blocked?: boolean; epoch?: number; retry?: number }): Promise<void>;
  run(ms: number): Promise<void>;
  /** runs the world until `p` settles (within 10 s of simulated time) and gives its outcome */
  drive<T>(p: Promise<T>): Promise<T>;
  seqsOf(deviceId: string): number[];
}

export async function lineRig(devices = ['fw1', 'fw2']): Promise<LineRig> {
  const world = new World(3);
  const rabbit = new MemoryRabbit('ln');
  const store = createMemoryStore({ now: () => world.now });
  const runtimes = new Map<string, { runtime: Runtime; gate: Gate; conn: MemoryConnection }>();
  const agent = rabbit.connect({ schedule: (f) => f() });
  await agent.start();
  const deliveries: WireMessage[] = [];
  await agent.consume(await agent.assertAgentQueue('a1'), (d) => (deliveries.push(d.message!), d.ack()), { prefetch: 1000 });
  const grants: LeaseGrant[] = [];
  const keyOf = (id: string) => agentKey(TEST_SECRET, id);
  await agent.subscribeEvents('control', (p) => {
    const u = unseal(keyOf, 'control', p);
    const g = 'invalid' in u ? null : parseGrant(u.event);
    if (g) grants.push(g);
  }, 'a1');
  let beat = 0;
  const run = (ms: number) => world.run(() => false, world.now + ms).then(() => {});
  const rig: LineRig = {
    world,
    store,
    runtimes,
    async start(id) {
      const gate = new Gate(id);
      const conn = rabbit.connect({ schedule: gate.run });
      const runtime = createRuntime({ devices, runtimeId: id, namespace: 'ln', ...runtimeTrust, leaderTtl: 1500, ports: { broker: conn, store }, clock: world.clock(gate) });
      runtimes.set(id, { runtime, gate, conn });
      await runtime.start();
      return runtime;
    },
    kill(id) {
      const r = runtimes.get(id)!;
      r.gate.kill();
      r.conn.kill();
    },
    deliveries,
    grants,
    async heartbeat(lanes) {
      ++beat;
      await agent.publishEvent('heartbeats', seal(keyOf('a1'), 'heartbeats', 'a1', { type: 'heartbeat', agentId: 'a1', host: 'h', pid: 1, sentAt: 0, beat, incarnation: 'a1#1', ...(lanes ? { lanes } : {}) }));
      await run(50);
    },
    async receipt(r, epoch = 1) {
      await agent.publishEvent('receipts', signedReceipt('a1', { epoch, ...r }));
      await run(50);
    },
    async dispatch(r, deviceId, n) {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const p = r.dispatch({ deviceId, method: 'PUT', path: `/p/${i}` });
        let seq: number | null = null;
        void p.then((m) => (seq = m.seq));
        await world.run(() => seq !== null, world.now + 5000);
        out.push((await p).seq);
      }
      return out;
    },
    async refuse(m, { blocked = true, epoch = 1, retry } = {}) {
      const entry = { deviceId: m.deviceId, seq: m.seq, epoch, agentId: 'a1', reason: 'device rejected the message (422)', status: 422, response: 'vlan 4095 is reserved', payload: encodeMessage(m).toString('utf8') };
      await rig.receipt({ type: 'dead-letter', anomaly: false, blocked, entry, ...(retry !== undefined ? { retry } : {}) }, epoch);
    },
    run,
    async drive(p) {
      let done = false;
      const watched = p.finally(() => (done = true));
      watched.catch(() => {});
      await world.run(() => done, world.now + 10_000);
      return watched;
    },
    seqsOf: (deviceId) => deliveries.filter((m) => m.deviceId === deviceId).map((m) => m.seq),
  };
  return rig;
}

/** A rig whose runtime r1 leads with a1 active (it heartbeats). */
export async function leadingRig(devices?: string[]): Promise<LineRig & { r1: Runtime }> {
  const rig = await lineRig(devices);
  const r1 = await rig.start('r1');
  // a new leader grants once the last term's leases have certainly run out
  for (let i = 0; i < 40 && rig.grants.length === 0; i++) await rig.heartbeat();
  if (rig.grants.length === 0) throw new Error('no grant to a1');
  return { ...rig, r1 };
}

/** A leading rig where fw1's seqs 1..3 went out, 1 and 3 were applied and seq 2 refused: its line is blocked there (dead letter 1). */
export async function blockedAtTwo() {
  const c = await leadingRig();
  await c.dispatch(c.r1, 'fw1', 3);
  const refused = c.deliveries.find((m) => m.deviceId === 'fw1' && m.seq === 2)!;
  await c.receipt({ type: 'applied', ranges: [{ deviceId: 'fw1', from: 1, to: 1 }, { deviceId: 'fw1', from: 3, to: 3 }] });
  await c.refuse(refused);
  return { ...c, refused };
}
