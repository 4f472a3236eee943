/**
 * What agents' receipts change in the line orders (line-orders.ts), stored before the receipt is
 * acked (a failure sends it back to the queue, and it is taken again):
 * - a dead letter the agent blocked its line at (`blocked: true`, onPermanent=block): the line's
 *   order records the block at that seq (after the dead letter itself is stored), so that it
 *   outlives the agent and the runtime holds the device's new messages back (a block above a
 *   seq whose retry is pending says the retry was applied: the agent went past it);
 * - the active agent's heartbeat reporting a line it blocked itself that no order records yet (its
 *   dead-letter receipt is late: it went back to the queue, or the agent hands its stream over
 *   before it is taken): the block is recorded from the report, so that the next agent, which never
 *   saw the refusal, holds the line there too;
 * - an applied receipt naming the seq whose retry is pending (an operator's retry went through): the
 *   line is released there, the dead letter resolved `retried`, and the ledger counts the seq
 *   applied (it had counted it dead-lettered), so `applied()` of it resolves from now on;
 * - an applied receipt naming the retry it answers (`retry: n`) of a seq whose line was released
 *   meanwhile: an operator skipped it while the retry was on the wire (issue 15). The agent re-reads
 *   its orders before each attempt, so it sends nothing more after the skip's grant, but an attempt
 *   already sent can be applied. The device has it: the dead letter is resolved `retried` (saying
 *   it was on the wire when it was skipped) and the ledger counts it applied, as above; the line
 *   stays released (nothing above the seq went before it: the agent sends one request at a time).
 *   Refusing a skip while a retry is pending was the other way, and a worse one: the skip is the
 *   operator's only way out of a retry that cannot end (a device down for good, a retried message
 *   not stored any more), and the runtime cannot know whether the retry is on the wire. So the skip
 *   goes through, its answer says the pending retry may still be applied, and the receipt tells the
 *   truth afterwards. A bare applied range is not enough for this: an agent reports seqs at or below
 *   the watermark it was granted as "applied before its epoch", and that watermark counts
 *   dead-lettered seqs; only the retry named by the receipt says the device applied it. A skip and
 *   the receipt of the pending retry both resolve the dead letter in the line order's turn, before
 *   the order (LineOrders.change's `first`): whichever comes second finds the line released, so the
 *   skip never writes `skipped` over `retried`;
 * - a dead letter of a retry (it names its n) of a seq the line was released at meanwhile (skipped
 *   while that retry was on the wire, and refused again): not stored, so that the skipped dead letter
 *   is not opened again for a seq the line went past.
 */
import type { Logger } from 'pino';
import type { Clock, DeadLetter, DeadLetterStore, LineOrder } from '../ports.ts';
import type { AppliedRange, LaneReport } from '../side-channel.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import { blockedSeq, pendingRetry, type LineOrders } from './line-orders.ts';

export interface LineReceiptsDeps {
  lines: Pick<LineOrders, 'change' | 'order' | 'stored'>;
  deadLetters: Pick<DeadLetterStore, 'findDeadLetter' | 'resolveDeadLetter'>;
  ledger: Pick<AppliedLedger, 'retried'>;
  accounting: Pick<AppliedAccounting, 'accountFor'>;
  clock: Pick<Clock, 'now'>;
  log: Logger;
  /** a dead letter was resolved `retried` here, by a receipt (the operator's own actions tell of theirs) */
  resolved?(deviceId: string, seq: number): void;
}

/**
 * the seq whose applied receipt releases a line: its retry pending. Not a bare block: an agent may
 * report a seq at or below the watermark it was granted as "applied before its epoch" (it cannot
 * tell), and the runtime counts a dead-lettered seq in that watermark; only a retry sends it.
 */
const waitsOn = (o: ReturnType<LineOrders['order']>) => pendingRetry(o)?.seq ?? null;

export class LineReceipts {
  /** devices whose reported block is being recorded */
  private readonly reporting = new Set<string>();

  constructor(private readonly d: LineReceiptsDeps) {}

  /** An agent blocked the device's line at `e.seq` (its dead letter is stored already). */
  async blocked(e: DeadLetter): Promise<void> {
    const { lines, log } = this.d;
    // a line retried at a lower seq is blocked above it: the agent went past the retried seq, so
    // the device applied it (the applied receipt, flushed in batches, may come after this one)
    const retry = pendingRetry(lines.order(e.deviceId));
    if (retry && retry.seq < e.seq) await this.retried(e.deviceId, retry.seq, retry.n, e.agentId);
    const answer = `${e.status !== null ? `status ${e.status}` : 'no status'}${e.response ? `, answer ${JSON.stringify(e.response.slice(0, 200))}` : ''}`;
    const r = await lines.change(
      e.deviceId,
      (o) => {
        // released already (skipped, or retried and applied): a late receipt changes nothing
        if (o.releasedThrough >= e.seq) return null;
        const at = blockedSeq(o);
        if (at !== null && at < e.seq) {
          log.warn({ deviceId: e.deviceId, seq: e.seq, blockedAt: at }, 'an agent blocked a line above the seq it is blocked at already: the lower block stands');
          return null;
        }
        // a retry of this seq refused again ends the retry: the line is blocked at it again
        return { ...o, blockedAt: e.seq, retry: null };
      },
      { by: `agent:${e.agentId}`, note: `seq ${e.seq} refused (${answer}): ${e.reason}` },
    );
    if (r.changed) log.error({ deviceId: e.deviceId, seq: e.seq, agentId: e.agentId }, `device ${e.deviceId}'s line is blocked at seq ${e.seq}: its new messages are kept in the database until an operator frees it (baton unblock ${e.deviceId} --retry after fixing the device, or --skip)`);
  }

  /**
   * A dead letter of the seq whose retry is pending that does not answer that retry (its receipt
   * names no retry, or another): the first refusal's receipt, taken late (it went back to the
   * queue). It is not stored again (it would open the dead letter again) nor taken as the retry's.
   */
  stale(e: DeadLetter, retry: number | null): boolean {
    const r = pendingRetry(this.d.lines.order(e.deviceId));
    return r !== null && r.seq === e.seq && retry !== r.n;
  }

  /**
   * A dead letter of a retry (`retry`: its n) of a seq the line was released at meanwhile: the retry
   * was on the wire when an operator skipped the seq, and the device refused it again. Not stored
   * again: it would open again the dead letter of a seq the line went past (it stays skipped).
   */
  refusedAfterRelease(e: DeadLetter, retry: number | null): boolean {
    return retry !== null && this.d.lines.order(e.deviceId).releasedThrough >= e.seq;
  }

  /** The active agent's lane reports: a block it reports that no order knows of (nor released, nor retried) is recorded. */
  reported(agentId: string, lanes: readonly LaneReport[]): void {
    const { lines, log } = this.d;
    const unknown = (o: LineOrder, seq: number) => o.releasedThrough < seq && blockedSeq(o) === null && pendingRetry(o) === null;
    for (const l of lanes) {
      if (l.state !== 'blocked' || this.reporting.has(l.deviceId) || !unknown(lines.order(l.deviceId), l.seq)) continue;
      this.reporting.add(l.deviceId);
      lines
        .change(l.deviceId, (o) => (unknown(o, l.seq) ? { ...o, blockedAt: l.seq, retry: null } : null), { by: `agent:${agentId}`, note: l.reason })
        .then(
          (r) => r.changed && log.error({ deviceId: l.deviceId, seq: l.seq, agentId }, `device ${l.deviceId}'s line is blocked at seq ${l.seq} (as its agent reports): its new messages are kept in the database until an operator frees it`),
          (err: Error) => log.warn({ deviceId: l.deviceId, seq: l.seq, err: err.message }, 'could not record a blocked line an agent reports; its next heartbeat tries again'),
        )
        .finally(() => this.reporting.delete(l.deviceId));
    }
  }

  /** Applied ranges (from `agentId`): a line whose retry of a seq they name is pending is released there; a retry named applied after its seq was released (skipped) is counted applied. */
  async applied(ranges: readonly AppliedRange[], agentId = '?'): Promise<void> {
    for (const g of ranges) {
      const o = this.d.lines.order(g.deviceId);
      const at = waitsOn(o);
      if (at !== null && at >= g.from && at <= g.to) await this.retried(g.deviceId, at, g.retry ?? null, agentId);
      else if (g.retry !== undefined && o.releasedThrough >= g.from) await this.appliedAfterRelease(g.deviceId, g.from, g.retry, agentId);
    }
  }

  /** The retry `n` of `seq` was applied though the line was released at `seq` before its receipt came (see the header). */
  private async appliedAfterRelease(deviceId: string, seq: number, n: number | null, agentId: string): Promise<void> {
    const { deadLetters, ledger, accounting, clock, log } = this.d;
    ledger.retried(deviceId, seq);
    accounting.accountFor(deviceId);
    const dead = await deadLetters.findDeadLetter(deviceId, seq);
    if (!dead || dead.resolution?.kind === 'retried') return;
    const was = dead.resolution ? `${dead.resolution.kind} by ${dead.resolution.by}` : 'released';
    await deadLetters.resolveDeadLetter(dead.id, { kind: 'retried', by: `agent:${agentId}`, at: clock.now(), detail: `applied when retried${n !== null ? ` (retry ${n})` : ''}: the retry was on the wire when seq ${seq} was ${was}` });
    this.d.resolved?.(deviceId, seq);
    const twice = dead.resolution?.kind === 'resent' ? `; it was resent as a new message too, which the device applies again` : '';
    log.warn({ deviceId, seq, n, agentId, was: dead.resolution?.kind ?? null }, `device ${deviceId} applied seq ${seq} (${n !== null ? `retry ${n}` : 'its retry'}, on the wire when it was ${was}): it counts applied, its dead letter says retried${twice}`);
  }

  /** The pending retry of `seq` was applied (`n`: the retry the receipt names, or the one pending): the line is released there. */
  private async retried(deviceId: string, seq: number, named: number | null, agentId: string): Promise<void> {
    const { lines, deadLetters, ledger, accounting, clock, log } = this.d;
    const by = lines.stored(deviceId)?.by ?? 'host';
    const n = named ?? lines.order(deviceId).retry?.n ?? null;
    // the device has it: counted applied at once (applied() of it resolves from now on), whatever
    // the writes below take; they are taken again with the receipt if they fail
    ledger.retried(deviceId, seq);
    accounting.accountFor(deviceId);
    // the dead letter first, in the order's turn: once the order is released a receipt taken again
    // would not come back here, and a skip racing with this receipt cannot write `skipped` over it
    let settled = false;
    const resolve = async () => {
      const dead = await deadLetters.findDeadLetter(deviceId, seq);
      if (dead && dead.resolution?.kind !== 'retried') await deadLetters.resolveDeadLetter(dead.id, { kind: 'retried', by, at: clock.now(), detail: `applied when retried${n !== null ? ` (retry ${n})` : ''}` });
      settled = dead !== null;
    };
    const r = await lines.change(deviceId, (o) => (waitsOn(o) === seq ? { ...o, releasedThrough: seq, retry: null } : null), { by, note: `seq ${seq} applied after it was retried` }, resolve);
    // told once the line is released too: whoever hears it sees the device flow again
    if (settled) this.d.resolved?.(deviceId, seq);
    if (r.changed) return void log.warn({ deviceId, seq }, `device ${deviceId} applied seq ${seq} when it was retried: its line goes on`);
    // released meanwhile (a skip took its turn first, or this receipt is taken again): the device has it all the same
    if (lines.order(deviceId).releasedThrough >= seq) await this.appliedAfterRelease(deviceId, seq, n, agentId);
  }
}
