/**
 * What receipts taught, stored by one write at a time, for every device touched since the last
 * one: receipts arrive a hundred at once (prefetch), and as many upserts of the same rows would
 * queue on each other's row locks and take every pooled connection, the leadership renewal's too.
 * A receipt is acked once a write that began after it was read has committed. A hung query must not
 * hold receipts (unacked, out of the leader's reach) for good: each write has a deadline.
 */
import { withDeadline } from '../clock.ts';
import type { Clock, DeliveryStore } from '../ports.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { Leadership } from './leadership.ts';

export class SettledWriter {
  private readonly settledDirty = new Set<string>();
  private settledWaiters: Array<{ resolve(): void; reject(e: unknown): void }> = [];
  private settledWriting = false;
  private settledRev = 0;

  constructor(
    private readonly d: {
      ledger: Pick<AppliedLedger, 'record'>;
      store: Pick<DeliveryStore, 'recordSettled'>;
      leadership: Pick<Leadership, 'currentTerm' | 'notLeader'>;
      clock: Clock;
      /** each write's deadline (the leader's ttl) */
      deadlineMs: number;
    },
  ) {}

  /** Resolves once a write that began after this call, covering these devices, has committed. */
  readonly storeSettled = (deviceIds: string[]) =>
    new Promise<void>((resolve, reject) => {
      for (const d of deviceIds) this.settledDirty.add(d);
      this.settledWaiters.push({ resolve, reject });
      this.writeSettled();
    });

  private writeSettled(): void {
    const { ledger, store, leadership, clock, deadlineMs } = this.d;
    if (this.settledWriting || this.settledDirty.size === 0) return;
    this.settledWriting = true;
    const records = [...this.settledDirty].sort().map((d) => ledger.record(d));
    this.settledDirty.clear();
    const waiting = this.settledWaiters;
    this.settledWaiters = [];
    // in this leader term only: a former leader's late write must not replace its successor's record
    const term = leadership.currentTerm();
    // each write of this runtime's records rises (the term first): one that outlived its deadline and
    // lands after a newer one keeps no ranges
    const write = term ? store.recordSettled(records, term, term.epoch * 2 ** 32 + ++this.settledRev) : Promise.reject(leadership.notLeader());
    withDeadline(clock, write, deadlineMs, 'storing receipts')
      .then(
        () => waiting.forEach((w) => w.resolve()),
        (err: unknown) => waiting.forEach((w) => w.reject(err)),
      )
      .finally(() => {
        this.settledWriting = false;
        this.writeSettled();
      });
  }
}
