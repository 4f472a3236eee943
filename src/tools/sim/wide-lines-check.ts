/**
 * What the wide simulation's checker asks of device lines in the seeds where an operator acts
 * (wide-line-operator.ts; the agents then block a line at a refusal), from the devices' own records of
 * each write applied (its seq, the agent process that sent it, when) and each refusal, and from the
 * grants each agent process took (when an order took effect there):
 * - nothing applied while paused: no write applied that its agent process sent after it took a
 *   grant whose order paused the device and before it took one that did not (a request already
 *   on the wire when the pause took effect may finish);
 * - nothing above a refused seq S applied while the line was blocked at S: a write of a seq above
 *   S sent after the device refused S comes after S was applied (a retry), or from an agent process
 *   that had taken a grant releasing S (`releasedThrough >= S`: a skip);
 * - a paused line's new messages stay out of the agent queues (parked): no message of the device
 *   accepted after the pause was answered is published until the operator asks to resume;
 * - at the end every order is released: none paused, blocked, or with a retry pending.
 * (Every accepted message applied or dead-lettered, in seq order, is wide-check.ts's: a skipped
 * seq stays dead-lettered, a retried one that was applied counts applied, also when it was skipped
 * while the retry was on the wire.)
 */
import type { StoredLineOrder } from '../../ports.ts';
import { heldBy, pendingRetry } from '../../runtime/line-orders.ts';
import type { SimDevice } from './sim-devices.ts';
import type { HostCall } from './wide-check.ts';
import type { GrantTaken, WideDeployment } from './wide-deployment.ts';

const some = (xs: number[], n = 5) => (xs.length > n ? `${xs.slice(0, n).join(', ')}, …` : xs.join(', '));

/** the grant an agent process had taken last before the world stamp `t` */
function inForce(grants: GrantTaken[] | undefined, t: number): GrantTaken | null {
  let last: GrantTaken | null = null;
  for (const g of grants ?? []) if (g.stamp < t) last = g;
  return last;
}

export function checkLines(devices: SimDevice[], taken: ReadonlyMap<string, GrantTaken[]>): string[] {
  const v: string[] = [];
  for (const x of devices) {
    const writes = x.writes ?? [];
    const whilePaused = writes.filter((w) => inForce(taken.get(w.agent), w.sent)?.lines[x.id]?.paused === true);
    if (whilePaused.length) {
      const w = whilePaused[0]!;
      const since = inForce(taken.get(w.agent), w.sent)!.at;
      v.push(`${x.id}: ${whilePaused.length} write(s) sent and applied while the agent held an order pausing the device: seq ${some(whilePaused.map((y) => y.seq))} (seq ${w.seq} sent by ${w.agent} at ${w.sentAt} ms, under a grant pausing it taken at ${since} ms)`);
    }

    const pastBlock: number[] = [];
    let first = '';
    for (const r of x.refusals ?? []) {
      for (const w of writes) {
        if (w.seq <= r.seq || w.sent < r.stamp) continue;
        const appliedFirst = writes.some((a) => a.seq === r.seq && a.applied < w.sent);
        const released = (inForce(taken.get(w.agent), w.sent)?.lines[x.id]?.releasedThrough ?? 0) >= r.seq;
        if (!appliedFirst && !released) pastBlock.push(w.seq);
        if (!appliedFirst && !released && pastBlock.length === 1) first = `seq ${w.seq} sent by ${w.agent} at ${w.sentAt} ms, seq ${r.seq} refused at ${r.at} ms`;
      }
    }
    if (pastBlock.length) v.push(`${x.id}: ${pastBlock.length} write(s) above a refused seq applied while its line was blocked there (neither retried nor released): seq ${some([...new Set(pastBlock)])} (${first})`);
  }
  return v;
}

/** Publishes, while a device was paused, of its messages accepted after the pause was answered (they are to be parked). */
export function checkHeldOut(d: Pick<WideDeployment, 'published' | 'pauses'>, calls: HostCall[]): string[] {
  const v: string[] = [];
  for (const p of d.pauses) {
    const before = calls.filter((c) => c.deviceId === p.deviceId && c.outcome === 'accepted' && c.acceptedStamp! < p.from).map((c) => c.seq!);
    const threshold = Math.max(0, ...before);
    const out = d.published.filter((x) => x.deviceId === p.deviceId && x.stamp > p.from && (p.to === null || x.stamp < p.to) && x.seq > threshold).map((x) => x.seq);
    if (out.length) v.push(`${p.deviceId}: ${out.length} message(s) accepted after its pause published to an agent queue while it was paused (they are to stay parked): seq ${some(out)}`);
  }
  return v;
}

/** The orders still holding a line (or waiting on a retry) once everything should have been released. */
export function heldAtTheEnd(orders: StoredLineOrder[]): string[] {
  const held = orders.filter((s) => heldBy(s.order) || pendingRetry(s.order));
  return held.length ? [`${held.length} device line(s) still held by their orders: ${held.map((s) => `${s.deviceId} ${JSON.stringify(s.order)}`).join('; ')}`] : [];
}
