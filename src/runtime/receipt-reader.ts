/**
 * Receipts are read by the leader alone: a standby consuming the one durable receipts queue would
 * take a share of them (applied() of a dead letter timing out, watermarks lagging). The leader
 * subscribes when it wins, after reloading the watermarks the previous leader stored, and cancels
 * when it loses; the queue keeps what arrives meanwhile.
 */
import { delay } from '../clock.ts';
import { BatonError } from '../errors.ts';
import type { AssignmentStore, Broker, DeadLetterStore, DeliveryStore, Subscription } from '../ports.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { EpochHolders } from './epoch-holders.ts';
import type { RuntimeSetup } from './options.ts';

export interface ReceiptReaderDeps extends Pick<RuntimeSetup, 'deviceSet' | 'clock' | 'log'> {
  store: Pick<DeliveryStore, 'settledRecords' | 'deviceStreams'> & Pick<AssignmentStore, 'getAssignment' | 'listSwitches'> & Pick<DeadLetterStore, 'listDeadLetters'>;
  broker: Pick<Broker, 'subscribeEvents'>;
  ledger: Pick<AppliedLedger, 'load' | 'handedOutBefore' | 'deadLettered'>;
  holders: Pick<EpochHolders, 'load'>;
  accounting: Pick<AppliedAccounting, 'accountFor'>;
  /** `earlier`: the takes of the receipts delivered before this one and not finished (each settles once taken, or once it went back to the queue) */
  onReceipt(p: unknown, earlier: ReadonlyArray<Promise<void>>): Promise<void>;
  leading(): boolean;
  /** the runtime runs (not starting, not stopping) */
  running(): boolean;
}

export class ReceiptReader {
  private receiptReader: Promise<Subscription | null> = Promise.resolve(null);
  /** the receipts being taken now, in delivery order (one that fails stays here until it goes back to the queue) */
  private readonly taking = new Set<Promise<void>>();

  constructor(private readonly d: ReceiptReaderDeps) {}

  /** Settles once the last subscribe or cancel asked for is done. */
  settled(): Promise<Subscription | null> {
    return this.receiptReader;
  }

  readonly readReceipts = (on: boolean) => {
    const { d } = this;
    const { log } = d;
    this.receiptReader = this.receiptReader.then(async (sub) => {
      if (!on || !d.running()) {
        await sub?.cancel().catch((err: Error) => log.warn({ err: err.message }, 'could not cancel the receipts subscription'));
        return null;
      }
      if (sub) return sub;
      try {
        const { store, ledger, holders, deviceSet } = d;
        // what the previous leader knew settled, exactly: its stored watermark, the runs above it and its dead letters
        for (const r of await store.settledRecords()) ledger.load(r);
        // what was handed out before this term (a receipt above it names a seq nobody sent), and who held each epoch
        for (const s of await store.deviceStreams()) if (deviceSet.has(s.deviceId)) ledger.handedOutBefore(s.deviceId, s.nextSeq - 1);
        holders.load(await store.getAssignment(), await store.listSwitches());
        // every one, oldest first: the ledger keeps the newest when it bounds what it remembers
        const dead = (await store.listDeadLetters({ limit: Number.MAX_SAFE_INTEGER })).reverse();
        // (one retried by an operator and applied then counts applied: the device has it)
        for (const e of dead) if (deviceSet.has(e.deviceId) && e.resolution?.kind !== 'retried') ledger.deadLettered(e.deviceId, e.seq);
        for (const dev of deviceSet) d.accounting.accountFor(dev);
        return await d.broker.subscribeEvents('receipts', (p) => this.take(p));
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not read receipts yet; trying again in a second');
        d.clock.setTimeout(() => d.leading() && this.readReceipts(true), 1000);
        return null;
      }
    });
  };

  private take(p: unknown): Promise<void> {
    const run = this.takeOne(p, [...this.taking]);
    this.taking.add(run);
    const done = () => void this.taking.delete(run);
    run.then(done, done);
    return run;
  }

  private async takeOne(p: unknown, earlier: ReadonlyArray<Promise<void>>): Promise<void> {
    const { d } = this;
    try {
      // a receipt delivered before this runtime stopped leading (a pause, say) is the leader's to read
      if (!d.leading()) throw new BatonError('not-leader', 'this runtime no longer leads: the receipt goes back to the queue for the leader');
      await d.onReceipt(p, earlier);
      // it was read while leading but stored after the leadership ended (a hung query): the next
      // leader may have loaded the stored state before this write, so it must read the receipt too
      if (!d.leading()) throw new BatonError('not-leader', 'this runtime stopped leading while it stored the receipt: it goes back to the queue for the leader');
    } catch (err) {
      // not stored: the receipt goes back to the queue, after a pause (no hot loop while the database is down)
      d.log.warn({ err: (err as Error).message }, 'could not take a receipt; it goes back to the queue in a second');
      await delay(d.clock, 1000);
      throw err;
    }
  }
}
