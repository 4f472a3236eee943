/**
 * What the wide simulation asks of a deployment once the faults healed (see wide.ts): one leader,
 * normal and sending; the recorded assignment settled on a live agent; nothing parked; no agent
 * queue holding a message; nothing lost; no dispatch() to a live runtime unanswered; no device line
 * held by its order (the operator released them all). And what the
 * leader's `applied()` says of every accepted seq, for the checker to hold against the devices.
 */
import type { World } from './world.ts';
import { checkCalls, standingDeadLetters, type AppliedAnswer, type HostCall } from './wide-check.ts';
import { heldAtTheEnd } from './wide-lines-check.ts';
import type { SimRuntime, WideDeployment } from './wide-deployment.ts';

/** Drives the world while `p` settles (a store or broker call may need timers); undefined if it did not within `ms`. */
export async function drive<T>(world: World, p: Promise<T>, ms: number): Promise<T | undefined> {
  let out: { v: T } | null = null;
  p.then((v) => (out = { v }), () => (out = { v: undefined as T }));
  await world.run(() => out !== null, world.now + ms);
  return out === null ? undefined : (out as { v: T }).v;
}

/** What keeps the deployment from being live now (none: live). */
export async function liveness(d: WideDeployment, calls: HostCall[]): Promise<string[]> {
  const v: string[] = [];
  const ls = d.leaders();
  if (ls.length !== 1) v.push(`${ls.length} runtimes say they lead (${ls.map((r) => r.id).join(', ') || 'none'})`);
  const a = await d.store.getAssignment();
  const state = (id: string) => (d.agents.get(id)?.gate.dead !== false ? 'dead' : 'alive');
  if (!a || a.lock !== 0 || a.phase !== 'normal') v.push(`the recorded assignment is ${a ? `phase ${a.phase}, lock ${a.lock}, agent ${a.agentId} (${state(a.agentId)})` : 'missing'}`);
  else if (state(a.agentId) === 'dead') v.push(`the recorded active agent ${a.agentId} is dead`);
  if (ls.length >= 1) {
    const s = await ls[0]!.runtime.status();
    const coord = JSON.stringify(s.coordinator);
    if (!coord.includes('normal')) v.push(`the leader's coordinator is in ${coord}`);
    if (s.dispatcher !== 'sending') v.push(`the leader's dispatcher is in ${JSON.stringify(s.dispatcher)}`);
  }
  const parked = await d.store.countParked();
  if (parked) v.push(`${parked} message(s) parked`);
  for (const [name, q] of d.rabbit.queues) {
    if (!name.startsWith('sim.agent.')) continue;
    const unacked = unackedIn(d, name);
    if (q.ready.length || unacked) v.push(`queue ${name}${a && a.topic === name ? ' (active)' : ' (not active)'} holds ${q.ready.length} ready, ${unacked} unacked`);
  }
  const dead = standingDeadLetters(await d.store.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER }));
  const open = checkCalls(d.devices, calls, dead).filter((x) => /lost/.test(x));
  // the operator released every line it held (paused, blocked, retried)
  v.push(...heldAtTheEnd(await d.store.lineOrders()));
  v.push(...open);
  const hung = calls.filter((c) => c.outcome === 'in-doubt' || c.outcome === 'pending').filter((c) => !d.runtimes.get(c.runtime)!.gate.dead);
  if (hung.length) v.push(`${hung.length} dispatch() call(s) to a live runtime never answered (e.g. ${hung[0]!.deviceId} to ${hung[0]!.runtime} at ${hung[0]!.at} ms)`);
  return v;
}

/** deliveries of `queue` taken by some process and not acked yet */
function unackedIn(d: WideDeployment, queue: string): number {
  let n = 0;
  for (const p of [...d.agents.values(), ...d.runtimes.values()]) {
    for (const conn of p.broker.connections) for (const { queue: q, c } of conn['consumers']) if (q === queue) n += c.unacked.size;
  }
  return n;
}

/** The leader's `applied()` of every accepted seq, as it settled within 6 s (or 'unsettled'). */
export async function askApplied(d: WideDeployment, leader: SimRuntime, calls: HostCall[]): Promise<AppliedAnswer[]> {
  const answers: AppliedAnswer[] = [];
  let open = 0;
  for (const c of calls) {
    if (c.outcome !== 'accepted') continue;
    const a: AppliedAnswer = { deviceId: c.deviceId, seq: c.seq!, answer: 'unsettled' };
    answers.push(a);
    open++;
    leader.runtime.applied({ deviceId: c.deviceId, seq: c.seq! }, { timeoutMs: 5000 }).then(
      () => ((a.answer = 'resolved'), open--),
      (e: { code?: string }) => ((a.answer = e.code === 'device-rejected' ? 'device-rejected' : e.code === 'timeout' ? 'timeout' : 'other'), open--),
    );
  }
  await d.world.run(() => open === 0, d.world.now + 6000);
  return answers;
}
