/**
 * Takes the receipts agents send (applied ranges, dead letters, a lease given back) and keeps out at the trust
 * boundary what no agent may claim: a receipt no agent of this deployment sealed, one from an agent
 * that never held the epoch it names, seqs that were never handed out. What a receipt settles is
 * accounted for (ledger, waiters, metrics, events) and stored before it is acked.
 */
import type { Logger } from 'pino';
import { withDeadline } from '../clock.ts';
import { BatonError } from '../errors.ts';
import type { Clock, DeadLetterStore } from '../ports.ts';
import { parseReceipt, type AppliedRange, type ReceiptEvent } from '../side-channel.ts';
import { unseal } from '../trust.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { DeviceNotes } from './devices.ts';
import type { EpochHolders } from './epoch-holders.ts';
import type { LineReceipts } from './line-receipts.ts';
import type { Emit } from './events.ts';
import type { Metrics } from './metrics.ts';
import type { RuntimeSetup } from './options.ts';
import type { SettledWriter } from './settled-writer.ts';

type Refused = (kind: string, fields: Record<string, unknown>, msg: string) => void;
type Applied = Extract<ReceiptEvent, { type: 'applied' }>;
type Dead = Extract<ReceiptEvent, { type: 'dead-letter' }>;

export interface ReceiptDeps extends Pick<RuntimeSetup, 'keyOf' | 'deviceSet' | 'clock' | 'log'> {
  refused: Refused;
  holders: Pick<EpochHolders, 'holder'>;
  ledger: AppliedLedger;
  accounting: Pick<AppliedAccounting, 'accountFor' | 'deadLettered'>;
  settled: Pick<SettledWriter, 'storeSettled'>;
  store: Pick<DeadLetterStore, 'deadLetter'>;
  metrics: Metrics;
  emit: Emit;
  /** what the per-device view notes: applied receipts, dead letters */
  notes?: Pick<DeviceNotes, 'applied' | 'deadLettered'>;
  /** what receipts change in the line orders: blocks recorded, retried seqs released */
  lines?: Pick<LineReceipts, 'blocked' | 'applied' | 'stale' | 'refusedAfterRelease'>;
  /** a dead letter's write deadline (the leader's ttl) */
  deadlineMs: number;
  /** a `released` receipt from the agent that held `epoch`: its process `incarnation` gave that lease back (a planned handover) */
  released?(r: { agentId: string; epoch: number; incarnation: string }): void;
}

export class ReceiptTaker {
  private readonly log: Logger;
  private readonly clock: Clock;

  constructor(private readonly d: ReceiptDeps) {
    this.log = d.log;
    this.clock = d.clock;
  }

  readonly onReceipt = async (p: unknown, earlier: ReadonlyArray<Promise<void>> = []) => {
    const { d } = this;
    const r = this.authentic(p);
    if (!r) return;
    if (r.type === 'released') return this.released(r, earlier);
    if (r.type === 'applied') {
      const { touched, taken } = this.applied(r);
      // stored before the receipt is acked: a leader that dies now leaves it in the queue for the next
      if (d.lines) await withDeadline(this.clock, d.lines.applied(taken, r.agentId), d.deadlineMs, 'releasing a retried line');
      await d.settled.storeSettled([...touched]);
      d.emit('receipts.applied', { agentId: r.agentId, ranges: taken });
      return;
    }
    const e = r.entry;
    if (!this.mayDeadLetter(r)) return;
    await withDeadline(this.clock, d.store.deadLetter(e), d.deadlineMs, 'storing a dead letter');
    // a message that could not be read names no configured device: nothing to account for
    const accounted = d.deviceSet.has(e.deviceId);
    // the agent holds the line at this seq: recorded after the dead letter, so that it outlives the
    // agent, and before the dead letter is announced, so that whoever acts on the event finds the block
    if (accounted && r.blocked && d.lines) await withDeadline(this.clock, d.lines.blocked(e), d.deadlineMs, 'recording a blocked line');
    this.deadLettered(r, accounted);
    if (accounted) {
      d.accounting.accountFor(e.deviceId);
      await d.settled.storeSettled([e.deviceId]);
    }
  };

  /** The receipt, when an agent of this deployment sealed it and holds (or held) the epoch it names. */
  private authentic(p: unknown): ReceiptEvent | null {
    const { d, log } = this;
    const sealed = unseal(d.keyOf, 'receipts', p);
    if ('invalid' in sealed) return (d.refused('receipt-unauthenticated', { why: sealed.invalid }, 'refused a receipt that no agent of this deployment signed'), null);
    const r = parseReceipt(sealed.event);
    if ('invalid' in r) return (log.warn({ why: r.invalid }, 'ignored a malformed receipt'), null);
    // a dead letter that names no configured device (a message the agent could not read or
    // authenticate) settles nothing: it is only recorded, from any agent of this deployment
    // a lease given back counts only from its holder, like what it settles
    const settles = r.type !== 'dead-letter' || d.deviceSet.has(r.entry.deviceId);
    if (settles && d.holders.holder(r.epoch) !== r.agentId) {
      return (d.refused('receipt-not-holder', { agentId: r.agentId, epoch: r.epoch, holder: d.holders.holder(r.epoch) }, 'refused a receipt from an agent that does not hold (and never held) the epoch it names'), null);
    }
    return r;
  }

  /** The ranges of seqs that were handed out, into the ledger: what they settle is accounted for. */
  /**
   * An agent gave its lease back (a planned handover). Receipts are taken concurrently, so one it
   * sent before this answer (a dead letter that blocks a line, say) may still be being stored, or
   * may have failed and be on its way back to the queue: the new agent's first grant must carry what
   * it changes (the line's block). So the answer waits for the receipts delivered before it; if one
   * of them could not be taken, neither is the answer: it goes back to the queue behind it.
   */
  private async released(r: Extract<ReceiptEvent, { type: 'released' }>, earlier: ReadonlyArray<Promise<void>>): Promise<void> {
    const before = await Promise.allSettled(earlier);
    if (before.some((x) => x.status === 'rejected')) {
      throw new BatonError('database-unavailable', `agent ${r.agentId} gave its lease back, but a receipt it sent before could not be taken yet: the answer waits for it (both go back to the queue)`);
    }
    this.d.released?.(r);
  }

  private applied(r: Applied): { touched: Set<string>; taken: AppliedRange[] } {
    const { d, log } = this;
    const { ledger } = d;
    const touched = new Set<string>();
    const taken: AppliedRange[] = [];
    for (const g of r.ranges) {
      if (!d.deviceSet.has(g.deviceId)) {
        log.warn({ agentId: r.agentId, deviceId: g.deviceId }, 'ignored a receipt mark for a device not configured');
        continue;
      }
      // only seqs that were handed out: a receipt above names a seq nobody sent
      const top = Math.min(g.to, ledger.handedOut(g.deviceId));
      if (top < g.to) d.refused('receipt-not-handed-out', { agentId: r.agentId, deviceId: g.deviceId, from: Math.max(g.from, top + 1), to: g.to, handedOut: ledger.handedOut(g.deviceId) }, 'refused receipt seqs that were never handed out');
      if (top < g.from) continue;
      d.metrics.onApplied(g.deviceId, ledger.applied(g.deviceId, g.from, top));
      d.notes?.applied(g.deviceId);
      touched.add(g.deviceId);
      taken.push({ ...g, to: top });
    }
    for (const dev of touched) d.accounting.accountFor(dev);
    return { touched, taken };
  }

  /** Whether a dead letter is to be stored: a seq that was handed out, and not one a receipt named applied. */
  private mayDeadLetter(r: Dead): boolean {
    const { d, log } = this;
    const e = r.entry;
    const settles = d.deviceSet.has(e.deviceId);
    if (settles && e.seq > d.ledger.handedOut(e.deviceId)) {
      d.refused('receipt-not-handed-out', { agentId: r.agentId, deviceId: e.deviceId, seq: e.seq }, 'refused a dead letter for a seq that was never handed out');
      return false;
    }
    if (d.lines?.stale(e, r.retry)) {
      log.warn({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId }, 'a dead letter of a seq whose retry is pending came, not from that retry: the first refusal\'s receipt taken late, not stored again');
      return false;
    }
    if (d.lines?.refusedAfterRelease(e, r.retry)) {
      log.warn({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId, retry: r.retry }, 'a retry refused again after its seq was released (skipped while the retry was on the wire): its dead letter stays as it was, not opened again');
      return false;
    }
    // a seq a receipt named applied is not dead-lettered: an anomaly is the agent's verdict from what
    // it knows (a redelivery after all); a refusal is one taken late (its receipt went back to the
    // queue, and an operator's retry has applied the seq since)
    if (d.ledger.isApplied(e.deviceId, e.seq)) {
      const what = r.anomaly ? 'an agent flagged a redelivered message as an anomaly' : 'a dead letter came for a seq';
      log.warn({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId }, `${what}, but a receipt said it was applied: not a dead letter`);
      return false;
    }
    return true;
  }

  /** A stored dead letter: into the ledger, the metrics, the log and the events; its waiters learn why. */
  private deadLettered(r: Dead, accounted: boolean): void {
    const { d, log } = this;
    const e = r.entry;
    if (accounted) d.ledger.deadLettered(e.deviceId, e.seq);
    d.notes?.deadLettered(e.deviceId, e.seq, e.reason);
    d.metrics.onDeadLettered(e.deviceId, r.anomaly);
    if (r.anomaly) {
      log.error({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId, reason: e.reason }, 'delivery anomaly: an agent got a message at or below the device watermark that nobody applied; dead-lettered');
      d.emit('delivery.anomaly', { deviceId: e.deviceId, seq: e.seq, reason: e.reason, agentId: r.agentId });
    } else log.error({ deviceId: e.deviceId, seq: e.seq, agentId: r.agentId, reason: e.reason }, 'message dead-lettered');
    d.emit('message.dead-lettered', { deviceId: e.deviceId, seq: e.seq, reason: e.reason, agentId: r.agentId });
    d.accounting.deadLettered(e.deviceId, e.seq, e.reason);
  }
}
