/**
 * The checks of a scenario (DESIGN.md §8) against each device's own applied log and what the
 * runtimes accepted, and the report with its figures: throughput, kill-to-resume, switch phases.
 * A dead-lettered seq is not expected applied, unless an operator had it retried: then it must be
 * applied once, in its place; one an operator skipped must never be.
 */
import { checkDevice, staleWrites } from '../../devices/checker.ts';
import type { DeviceSimulator } from '../../devices/simulator.ts';
import type { DeadLetterView, SwitchRecord } from '../../ports.ts';
import type { Scenario } from './schema.ts';
import type { Check, ScenarioReport, SwitchFigures } from './types.ts';

export interface Outcome {
  devices: Array<{ id: string; sim: DeviceSimulator }>;
  accepted: Map<string, number[]>;
  deadLetters: DeadLetterView[];
  switches: SwitchRecord[];
}

export function checksOf(s: Scenario, r: Outcome): Check[] {
  let lost = 0;
  let reordered = 0;
  let duplicates = 0;
  let maxDup = 0;
  let stale = 0;
  for (const { id, sim } of r.devices) {
    // a retried one is not given up: the device must apply it after all
    const dead = new Set(r.deadLetters.filter((x) => x.deviceId === id && x.resolution?.kind !== 'retried').map((x) => x.seq));
    const c = checkDevice(id, sim.applied.map((e) => e.seq), r.accepted.get(id)!.filter((seq) => !dead.has(seq)));
    lost += c.missing;
    reordered += c.outOfOrder;
    duplicates += c.duplicates;
    maxDup = Math.max(maxDup, c.duplicates);
    stale += staleWrites(sim.applied);
  }
  const reasons: Record<string, number> = {};
  const resolutions: Record<string, number> = {};
  for (const d of r.deadLetters) {
    reasons[d.reason] = (reasons[d.reason] ?? 0) + 1;
    resolutions[d.resolution?.kind ?? 'open'] = (resolutions[d.resolution?.kind ?? 'open'] ?? 0) + 1;
  }
  const totalAccepted = [...r.accepted.values()].reduce((t, x) => t + x.length, 0);
  const checks: Check[] = [
    { name: 'nothing lost', ok: lost === 0, accepted: totalAccepted, lost },
    { name: 'order per device', ok: reordered === 0, reordered },
    { name: 'duplicates within bound', ok: maxDup <= s.expect.maxDuplicatesPerDevice, duplicates, maxPerDevice: maxDup, bound: s.expect.maxDuplicatesPerDevice },
    { name: 'no stale-epoch write', ok: stale === 0, staleWrites: stale },
    { name: 'dead letters as expected', ok: r.deadLetters.length === s.expect.deadLetters, deadLettered: r.deadLetters.length, expected: s.expect.deadLetters, reasons, resolutions },
  ];
  if (s.expect.switches !== null) checks.push({ name: 'switches', ok: r.switches.length === s.expect.switches && r.switches.every((w) => w.phase === 'normal'), switches: r.switches.length, expected: s.expect.switches });
  checks.push(...unblockChecks(s, r));
  return checks;
}

/** Where `seq` stands in a device's applied log: how often it was applied, and whether every seq applied before it is lower and every one after it higher. */
function placeIn(applied: ReadonlyArray<{ seq: number | null }>, seq: number): { times: number; inPlace: boolean } {
  const seqs = applied.map((e) => e.seq).filter((x): x is number => x !== null);
  const at = seqs.indexOf(seq);
  const times = seqs.filter((x) => x === seq).length;
  return { times, inPlace: at >= 0 && seqs.slice(0, at).every((x) => x < seq) && seqs.slice(at + 1).every((x) => x > seq) };
}

/**
 * The dead letters an operator's unblock settled (when `expect.retried` / `expect.skipped` is set):
 * each retried seq applied exactly once, after every lower seq of its device and before every higher
 * one (the line was held at it until the retry); each skipped seq never applied.
 */
function unblockChecks(s: Scenario, r: Outcome): Check[] {
  const checks: Check[] = [];
  const logOf = (deviceId: string) => r.devices.find((d) => d.id === deviceId)?.sim.applied ?? [];
  const resolved = (kind: 'retried' | 'skipped') => r.deadLetters.filter((x) => x.resolution?.kind === kind);
  if (s.expect.retried !== null) {
    const retried = resolved('retried');
    const places = retried.map((x) => placeIn(logOf(x.deviceId), x.seq));
    const misplaced = retried.filter((_, i) => places[i]!.times !== 1 || !places[i]!.inPlace).map((x) => `${x.deviceId}#${x.seq}`);
    checks.push({ name: 'retried applied in place', ok: retried.length === s.expect.retried && misplaced.length === 0, retried: retried.length, expected: s.expect.retried, misplaced: misplaced.join(', ') || 'none' });
  }
  if (s.expect.skipped !== null) {
    const skipped = resolved('skipped');
    const applied = skipped.filter((x) => placeIn(logOf(x.deviceId), x.seq).times > 0).map((x) => `${x.deviceId}#${x.seq}`);
    checks.push({ name: 'skipped never applied', ok: skipped.length === s.expect.skipped && applied.length === 0, skipped: skipped.length, expected: s.expect.skipped, applied: applied.join(', ') || 'none' });
  }
  return checks;
}

/** Applied writes per device per second since `t0` (performance.now() when the run began). */
function throughputOf(devices: Outcome['devices'], t0: number): Record<string, number[]> {
  const seconds = Math.max(1, Math.ceil((performance.now() - t0) / 1000));
  const startWall = Date.now() - (performance.now() - t0);
  const throughput: Record<string, number[]> = {};
  for (const { id, sim } of devices) {
    const series = new Array<number>(seconds).fill(0);
    for (const e of sim.applied) {
      const b = Math.floor((e.at - startWall) / 1000);
      if (b >= 0 && b < seconds) series[b]!++;
    }
    throughput[id] = series;
  }
  return throughput;
}

function switchFigures(w: SwitchRecord): SwitchFigures {
  const ms = (a: Date | null, b: Date | null) => (a && b ? b.getTime() - a.getTime() : null);
  return {
    from: w.fromAgent,
    to: w.toAgent,
    epoch: w.epoch,
    reason: w.reason,
    switchingMs: ms(w.startedAt, w.drainingAt),
    drainingMs: ms(w.drainingAt, w.replayingAt),
    replayingMs: ms(w.replayingAt, w.completedAt),
    moved: w.moved,
    replayed: w.replayed,
  };
}

export function reportOf(s: Scenario, r: Outcome & { loadMs: number; killToResumeMs: number | null; aborted: boolean; t0: number; timeline: ScenarioReport['timeline'] }): ScenarioReport {
  const checks = checksOf(s, r);
  const applied = r.devices.reduce((t, { sim }) => t + sim.applied.length, 0);
  const throughput = throughputOf(r.devices, r.t0);
  return {
    name: s.name,
    ok: !r.aborted && checks.every((c) => c.ok),
    checks,
    figures: {
      throughputPerSec: Math.round(applied / (Math.max(r.loadMs, 1) / 1000)),
      killToResumeMs: r.killToResumeMs,
      durationMs: Math.round(performance.now() - r.t0),
      switches: r.switches.map(switchFigures),
    },
    timeline: r.timeline,
    throughput,
  };
}
