/**
 * The wide simulation's checker: what the host was told (each dispatch() call and its outcome)
 * against what the devices applied and what was dead-lettered (DESIGN.md §8):
 * - accepted = applied ∪ dead-lettered, exactly; nothing applied whose dispatch() was refused;
 * - per device, writes in dispatch() call order, seqs in call order, no stale epoch, no duplicate;
 * - what `applied()` says agrees with the devices;
 * - a planned handover whose old agent gave its lease back: no write of that agent under that epoch
 *   (or a lower one) reached a device after it answered, not even one a device refused: the
 *   duplicates and stale writes above are checked for every run, handovers or not.
 * Calls whose outcome the host never learned (in doubt) may end either way.
 */
import { checkDevice, staleWrites } from '../../devices/checker.ts';
import type { DeadLetter, DeadLetterView } from '../../ports.ts';
import type { SimDevice } from './sim-devices.ts';
import type { PlannedRelease } from './wide-deployment.ts';

export interface HostCall {
  id: number;
  deviceId: string;
  /** the logical message (the host's k-th message for the device) */
  k: number;
  runtime: string;
  at: number;
  /** in-doubt: the host gave up waiting; unknown: baton answered that it cannot tell (both may end either way) */
  outcome: 'pending' | 'in-doubt' | 'unknown' | 'accepted' | 'refused';
  seq?: number;
  error?: string;
  /** the world stamp of the answer that accepted it (its message was published or parked before) */
  acceptedStamp?: number;
}

/** The dead letters that stand: one an operator retried and the device then applied counts applied. */
export const standingDeadLetters = (all: DeadLetterView[]): DeadLetterView[] => all.filter((x) => x.resolution?.kind !== 'retried');

const some = (xs: number[], n = 5) => (xs.length > n ? `${xs.slice(0, n).join(', ')}, …` : xs.join(', '));

export function checkCalls(devices: SimDevice[], calls: HostCall[], deadLetters: DeadLetter[]): string[] {
  const v: string[] = [];
  for (const d of devices) {
    const mine = calls.filter((c) => c.deviceId === d.id);
    const byId = new Map(mine.map((c) => [c.id, c]));
    const accepted = mine.filter((c) => c.outcome === 'accepted');
    const appliedSeqs = new Set(d.model.applied.map((a) => a.seq));
    const dead = new Set(deadLetters.filter((x) => x.deviceId === d.id).map((x) => x.seq));

    const lost = accepted.filter((c) => !appliedSeqs.has(c.seq!) && !dead.has(c.seq!)).map((c) => c.seq!);
    if (lost.length) v.push(`${d.id}: ${lost.length} accepted message(s) neither applied nor dead-lettered (lost): seq ${some(lost)}`);
    const both = accepted.filter((c) => appliedSeqs.has(c.seq!) && dead.has(c.seq!)).map((c) => c.seq!);
    if (both.length) v.push(`${d.id}: ${both.length} message(s) both applied and dead-lettered: seq ${some(both)}`);

    const refused: number[] = [];
    const wrongSeq: number[] = [];
    d.calls.forEach((id, i) => {
      const c = byId.get(id)!;
      if (c.outcome === 'refused') refused.push(d.model.applied[i]!.seq!);
      if (c.outcome === 'accepted' && c.seq !== d.model.applied[i]!.seq) wrongSeq.push(d.model.applied[i]!.seq!);
    });
    if (refused.length) v.push(`${d.id}: ${refused.length} write(s) applied although dispatch() refused them (the host sent them again): seq ${some(refused)}`);
    if (wrongSeq.length) v.push(`${d.id}: ${wrongSeq.length} write(s) applied under another seq than dispatch() returned: seq ${some(wrongSeq)}`);

    // writes in dispatch() call order: the first write of each accepted call, by call id
    let last = -1;
    let outOfCallOrder = 0;
    const firstSeen = new Set<number>();
    for (const id of d.calls) {
      if (firstSeen.has(id) || byId.get(id)!.outcome !== 'accepted') continue;
      firstSeen.add(id);
      if (id < last) outOfCallOrder++;
      last = Math.max(last, id);
    }
    if (outOfCallOrder) v.push(`${d.id}: ${outOfCallOrder} write(s) applied out of dispatch() call order`);
    let maxSeq = -Infinity;
    const seqBehind: number[] = [];
    for (const c of accepted) {
      if (c.seq! < maxSeq) seqBehind.push(c.seq!);
      maxSeq = Math.max(maxSeq, c.seq!);
    }
    if (seqBehind.length) v.push(`${d.id}: ${seqBehind.length} accepted message(s) got a seq below one returned to an earlier dispatch() call: seq ${some(seqBehind)}`);

    const c = checkDevice(d.id, d.model.applied.map((a) => a.seq), []);
    if (c.outOfOrder) v.push(`${d.id}: ${c.outOfOrder} write(s) out of seq order`);
    if (c.duplicates) v.push(`${d.id}: ${c.duplicates} duplicate write(s) although the device reports its watermark`);
    const stale = staleWrites(d.model.applied);
    if (stale) v.push(`${d.id}: ${stale} write(s) accepted from a stale epoch`);
  }
  return v;
}

/** Writes that reached a device from an agent under an epoch it had given back (a planned handover), after it answered. */
export function checkPlanned(devices: SimDevice[], released: PlannedRelease[]): string[] {
  const v: string[] = [];
  for (const p of released) {
    for (const d of devices) {
      const late = d.attempts.filter((a) => a.agent === p.agentId && a.epoch <= p.epoch && a.at > p.at);
      if (late.length) v.push(`${d.id}: ${late.length} write(s) by ${p.agentId} under epoch ${p.epoch} after it gave that lease back (planned handover to epoch ${p.epoch + 1}${p.completed ? '' : ', not completed'})`);
    }
  }
  return v;
}

/** What `applied()` of each accepted seq did, against the devices. */
export interface AppliedAnswer {
  deviceId: string;
  seq: number;
  answer: 'resolved' | 'device-rejected' | 'timeout' | 'other' | 'unsettled';
}

export function checkAppliedAnswers(devices: SimDevice[], answers: AppliedAnswer[], deadLetters: DeadLetter[]): string[] {
  const v: string[] = [];
  for (const d of devices) {
    const appliedSeqs = new Set(d.model.applied.map((a) => a.seq));
    const dead = new Set(deadLetters.filter((x) => x.deviceId === d.id).map((x) => x.seq));
    const bad = new Map<string, number[]>();
    const add = (what: string, seq: number) => bad.set(what, [...(bad.get(what) ?? []), seq]);
    for (const a of answers.filter((x) => x.deviceId === d.id)) {
      if (a.answer === 'unsettled') add('never settled', a.seq);
      else if (appliedSeqs.has(a.seq)) {
        if (a.answer !== 'resolved') add(`applied, but applied() ended ${a.answer}`, a.seq);
      } else if (dead.has(a.seq)) {
        if (a.answer !== 'device-rejected') add(`dead-lettered, but applied() ${a.answer === 'resolved' ? 'resolved' : `ended ${a.answer}`}`, a.seq);
      } else if (a.answer === 'resolved') add('never applied, but applied() resolved', a.seq);
    }
    for (const [what, seqs] of bad) v.push(`${d.id}: applied() of ${seqs.length} accepted seq(s): ${what}: seq ${some(seqs)}`);
  }
  return v;
}
