/**
 * The wide simulation (`baton sim --model wide`): the real runtimes, agents and machines over the
 * in-memory services, with the faults nobody scripts (wide-faults.ts) and a checker that compares
 * what the host was told with what the devices did (wide-check.ts), then asks for liveness once
 * the faults heal.
 *
 * The deployment is drawn by the seed: two or three runtimes from the start, one to three agents,
 * one to three dispatches in flight per device. The host sends each device's messages to any
 * runtime that says it leads (from its `leader.won` / `leader.lost` events); a refusal is sent
 * again (elsewhere, for `not-leader`); a call unanswered for 3 s is in doubt and sent again. The
 * leadership TTL is 1.5 s (as in the narrow model) or 3 s (the default), drawn by the seed.
 *
 * An operator of device lines (wide-line-operator.ts), in three seeds of five, pauses and resumes
 * devices, makes one refuse a seq until fixed, and unblocks the lines the agents block (retry or
 * skip); the checker then also holds the lines to their orders (wide-lines-check.ts). Planned
 * handovers and agent stops are wide-operator.ts's.
 *
 * Liveness: within LIVENESS_MS of the load's end and the last fault's healing, exactly one runtime
 * leads, its coordinator is `normal` and its dispatcher `sending`, the recorded assignment has
 * lock 0, nothing is parked, no agent queue holds a message (ready or unacked), every accepted
 * message is applied or dead-lettered, every dispatch() to a live runtime has answered; then the
 * leader's `applied()` of every accepted seq settles as the devices say.
 *
 * The parts: wide-deployment.ts (the world and the processes), wide-host.ts (the load),
 * wide-faults.ts and wide-strikes.ts (the fault schedule and what each fault does),
 * wide-liveness.ts and wide-check.ts (the checks). This file runs them in order; every part draws
 * from the world's one random source, so the order is what keeps a seed's trace.
 */
import type { Assignment } from '../../ports.ts';
import type { SimOptions, SimResult } from './types.ts';
import { checkAppliedAnswers, checkCalls, checkPlanned, standingDeadLetters, type HostCall } from './wide-check.ts';
import { LineOperator } from './wide-line-operator.ts';
import { checkHeldOut, checkLines } from './wide-lines-check.ts';
import { WideDeployment } from './wide-deployment.ts';
import { drawWideFaults, type SwitchPhaseName, type WideFault } from './wide-faults.ts';
import { WideHost } from './wide-host.ts';
import { askApplied, drive, liveness } from './wide-liveness.ts';
import { drawOperator } from './wide-operator.ts';
import { makeFaults } from './wide-strikes.ts';

/** the liveness bound, simulated ms after the load ended and the last fault healed */
export const LIVENESS_MS = 20_000;

/** When the last fault heals (simulated ms): a fault pushes it later as it strikes. */
interface Healing {
  at: number;
}

export async function simulateWide(o: SimOptions): Promise<SimResult> {
  const d = new WideDeployment(o);
  const { world } = d;
  for (let i = 0; i < d.runtimeCount; i++) await d.startRuntime();
  for (let i = 0; i < d.agentCount; i++) await d.startAgent();
  d.latencyOn = true;
  const started = await world.run(() => d.leaders().length > 0, 5000);
  await world.run(() => false, world.now + 1500); // the agents heartbeat and one is chosen
  const calls: HostCall[] = [];
  const planned = () => ({ asked: d.planned.asked, released: d.planned.released.length, fallbacks: d.planned.fallbacks });
  const stats = () => ({ accepted: calls.filter((c) => c.outcome === 'accepted').length, applied: d.devices.reduce((t, x) => t + x.model.applied.length, 0), switches: d.switches, simulatedMs: world.now, planned: planned() });
  if (!started || !(await d.store.getAssignment())) return { seed: o.seed, ok: false, violations: ['no runtime led or no agent became active at start'], trace: d.trace, stats: stats() };

  const host = new WideHost(d, o.messages ?? 120, calls);
  const healing = scheduleFaults(d, o, host);
  const operator = d.lineOps ? new LineOperator(d) : null;
  operator?.start(host.loadStart, host.loadTime);
  const violations = await runLoad(d, host, healing);
  operator?.finish();
  // lost messages are reported with the safety checks below
  const live = await awaitLiveness(d, host, healing);
  operator?.stop();
  violations.push(...live.filter((x) => !/\(lost\)/.test(x)).map((x) => `liveness (${LIVENESS_MS} ms after healing): ${x}`));

  // safety, from the devices and the dead letters
  // every one, not the newest 1000; a retried one the device applied counts applied
  const dead = standingDeadLetters(await d.store.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER }));
  violations.push(...checkCalls(d.devices, calls, dead), ...checkPlanned(d.devices, d.planned.released));
  if (d.lineOps) violations.push(...checkLines(d.devices, d.grantsTaken), ...checkHeldOut(d, calls));
  // what the leader's applied() says of every accepted seq
  const leader = d.leaders()[0];
  if (leader) violations.push(...checkAppliedAnswers(d.devices, await askApplied(d, leader, calls), dead));

  d.killAll();
  return { seed: o.seed, ok: violations.length === 0, violations, trace: d.trace, stats: stats() };
}

/** The fault plan (drawn by the seed unless given), each at its time in the load, or at the next switch phase it waits for. */
function scheduleFaults(d: WideDeployment, o: SimOptions, host: WideHost): Healing {
  const { world } = d;
  const healing: Healing = { at: host.loadStart };
  const plan: WideFault[] = Array.isArray(o.faults) ? (o.faults as WideFault[]) : o.faults === false ? [] : [...drawWideFaults(d.rnd), ...(o.operator === false ? [] : drawOperator(o.seed))];
  const apply = makeFaults(d, (t) => (healing.at = Math.max(healing.at, t)));
  for (const f of plan) {
    world.at(host.loadStart + Math.floor(f.at * host.loadTime), () => {
      if (!f.when) return void apply(f, null);
      // strike at the next switch that reaches this phase (given up once the load is over)
      const l = (phase: SwitchPhaseName, a: Assignment) => {
        if (phase !== f.when) return;
        d.phaseListeners.splice(d.phaseListeners.indexOf(l), 1);
        void apply(f, a);
      };
      d.phaseListeners.push(l);
    });
  }
  return healing;
}

/** Runs the load until it is accepted or it cannot be any more (LIVENESS_MS after the faults healed); then it stops. */
async function runLoad(d: WideDeployment, host: WideHost, healing: Healing): Promise<string[]> {
  const { world } = d;
  // a heartbeat of the world, so that time always moves
  const beat = () => world.at(world.now + 500, beat);
  beat();
  for (;;) {
    const limit = Math.max(healing.at, host.loadStart + host.loadTime) + LIVENESS_MS;
    await world.runTo(() => host.loadDone(), Math.min(limit, world.now + 1000));
    if (host.loadDone() || world.now >= limit) break;
  }
  host.stop();
  d.phaseListeners.length = 0;
  if (host.loadDone()) return [];
  return [`liveness: ${host.missing()} of ${host.perDevice * d.devices.length} messages never accepted by ${LIVENESS_MS} ms after the faults healed`];
}

/** Liveness, once the load is over and the faults healed (faults planned late may still strike): what still fails it at the deadline. */
async function awaitLiveness(d: WideDeployment, host: WideHost, healing: Healing): Promise<string[]> {
  const { world } = d;
  const loadOver = host.loadEnd < 0 ? world.now : host.loadEnd;
  const deadline = () => Math.max(healing.at, loadOver) + LIVENESS_MS;
  for (;;) {
    await world.runTo(() => false, Math.max(world.now + 500, Math.min(healing.at, deadline())));
    const live = (await drive(world, liveness(d, host.calls), 2000)) ?? ['liveness check did not answer'];
    if (live.length === 0 || world.now >= deadline()) return live;
  }
}
