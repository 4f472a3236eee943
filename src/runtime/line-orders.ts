/**
 * The runtime's standing orders for device lines (LineOrder in ports.ts), as the leader holds them:
 * the stored orders, loaded when a leader term begins (before its first grant goes out and before
 * the dispatcher sends: a grant without a paused device's order would let the line flow), and every
 * change written in the term first, then taken into memory, one change at a time.
 *
 * A line is held (its new messages are parked in the database, not published) while its order
 * holds it (paused, or blocked at a seq no order released and no retry of it pending) and while it
 * is being released: from the order that frees it until the line's release (line-release.ts) has
 * published what was kept for it (the retried message, then its parked rows) and found no row and
 * no park of it left. The grants carry every order that says something (`lines()`).
 *
 * A write whose outcome is not known (it failed after it may have committed, or got no answer in
 * time and may still land) leaves memory unsure: the stored orders are read back (before the next
 * change, and `deadlineMs` later) and the stored ones stand, until a read finds nothing changed.
 */
import type { Logger } from 'pino';
import { withDeadline } from '../clock.ts';
import { BatonError, isBatonError } from '../errors.ts';
import type { Clock, LeaderTerm, LineOrder, LineStore, StoredLineOrder } from '../ports.ts';
import { MAX_LINE_ORDERS } from '../side-channel.ts';

export const NO_ORDER: LineOrder = Object.freeze({ paused: false, blockedAt: null, retry: null, releasedThrough: 0 });

/** the seq the line is blocked at, when no order released it (null: not blocked) */
export const blockedSeq = (o: LineOrder): number | null => (o.blockedAt !== null && o.blockedAt > o.releasedThrough ? o.blockedAt : null);

/** the retry ordered and not settled yet (null: none) */
export const pendingRetry = (o: LineOrder): LineOrder['retry'] => (o.retry !== null && o.retry.seq > o.releasedThrough ? o.retry : null);

/** whether the order itself holds the line: paused, or blocked with no retry of the blocked seq pending */
export function heldBy(o: LineOrder): boolean {
  const at = blockedSeq(o);
  return o.paused || (at !== null && pendingRetry(o)?.seq !== at);
}

const says = (o: LineOrder) => o.paused || o.blockedAt !== null || o.retry !== null || o.releasedThrough > 0;

/** What a change did: the order before and after, and whether anything was written. */
export interface LineChange {
  before: LineOrder;
  after: LineOrder;
  changed: boolean;
}

export interface LineOrdersDeps {
  store: LineStore;
  deviceSet: ReadonlySet<string>;
  /** the term this runtime leads in now, or null */
  term(): LeaderTerm | null;
  clock: Clock;
  log: Logger;
  /** how long a read or write of the orders may take (the leader's ttl): past it, it counts as failed and the next change goes on */
  deadlineMs: number;
}

export class LineOrders {
  private orders = new Map<string, StoredLineOrder>();
  /** the leader term whose orders are in memory (null: none loaded) */
  private loadedEpoch: number | null = null;
  /** lines freed by an order whose release has not ended yet */
  private readonly releasing = new Set<string>();
  /** per device, the retry (its n) already published in this term */
  private readonly published = new Map<string, number>();
  /** per device, the highest retry n ordered in this term (a refusal clears the order's retry, not this) */
  private readonly lastRetry = new Map<string, number>();
  /** changes (and loads) one at a time, in the order asked */
  private serial: Promise<unknown> = Promise.resolve();
  private grantLines: Record<string, LineOrder> | null = null;
  /** a write's outcome is not known: the stored orders are to be read back */
  private unsure = false;
  private readBackTimer: { cancel(): void } | null = null;
  /** a line was freed: its release is to run (line-release.ts) */
  onRelease: (deviceId: string) => void = () => {};

  constructor(private readonly d: LineOrdersDeps) {}

  /** The stored orders, once per leader term (before its first grant and its first send). */
  load(term: LeaderTerm): Promise<void> {
    if (this.loadedEpoch === term.epoch) return Promise.resolve();
    return this.turn(async () => {
      if (this.loadedEpoch === term.epoch) return;
      const all = await withDeadline(this.d.clock, this.d.store.lineOrders(), this.d.deadlineMs, 'reading the line orders');
      this.orders = new Map(all.filter((o) => this.d.deviceSet.has(o.deviceId)).map((o) => [o.deviceId, o]));
      this.grantLines = null;
      this.releasing.clear();
      this.published.clear();
      this.lastRetry.clear();
      this.unsure = false;
      // a retry ordered in an earlier term may not have reached the queue: it is published again (an
      // agent acts on a (seq, n) once, so a second copy is settled unsent)
      for (const [deviceId, s] of this.orders) if (pendingRetry(s.order) && !heldBy(s.order)) this.releasing.add(deviceId);
      this.loadedEpoch = term.epoch;
      const held = [...this.orders.values()].filter((s) => heldBy(s.order)).map((s) => s.deviceId);
      if (held.length) this.d.log.info({ held }, 'line orders loaded: these lines are held');
    });
  }

  order(deviceId: string): LineOrder {
    return this.orders.get(deviceId)?.order ?? NO_ORDER;
  }

  /** the stored order with who set it, when and why (null: the device never had one) */
  stored(deviceId: string): StoredLineOrder | null {
    return this.orders.get(deviceId) ?? null;
  }

  heldByOrder(deviceId: string): boolean {
    return heldBy(this.order(deviceId));
  }

  /** whether the device's new messages are parked instead of published */
  holding(deviceId: string): boolean {
    return this.releasing.has(deviceId) || this.heldByOrder(deviceId);
  }

  /** the devices whose orders hold their lines: the replay leaves their parked rows parked */
  held(): string[] {
    return [...this.orders.values()].filter((s) => heldBy(s.order)).map((s) => s.deviceId);
  }

  isReleasing(deviceId: string): boolean {
    return this.releasing.has(deviceId);
  }

  releasingDevices(): string[] {
    return [...this.releasing];
  }

  /** The release is over: everything kept was published (or the order holds the line again). */
  endRelease(deviceId: string): void {
    this.releasing.delete(deviceId);
  }

  /** the pending retry whose message this term has not published yet (null: none) */
  retryToPublish(deviceId: string): LineOrder['retry'] {
    const r = pendingRetry(this.order(deviceId));
    return r && this.published.get(deviceId) !== r.n ? r : null;
  }

  retryPublished(deviceId: string, n: number): void {
    this.published.set(deviceId, n);
  }

  /**
   * The `n` of the next retry of this device: above every earlier one, also after a refusal cleared
   * the order's retry and after a change of leader (the term's epoch leads it), since an agent acts
   * on each (seq, n) once. Asked inside a change, in the term whose orders are loaded.
   */
  nextRetryN(deviceId: string): number {
    const n = Math.max((this.lastRetry.get(deviceId) ?? this.order(deviceId).retry?.n ?? 0) + 1, (this.loadedEpoch ?? 0) * 1_000_000 + 1);
    this.lastRetry.set(deviceId, n);
    return n;
  }

  /** every order that says something, for the grants (held lines first when there are too many) */
  lines(): Record<string, LineOrder> {
    if (this.grantLines) return this.grantLines;
    let all = [...this.orders.values()].filter((s) => says(s.order));
    if (all.length > MAX_LINE_ORDERS) {
      const weight = (o: LineOrder) => (heldBy(o) || pendingRetry(o) ? 0 : 1);
      all = all.sort((a, b) => weight(a.order) - weight(b.order)).slice(0, MAX_LINE_ORDERS);
      this.d.log.warn({ orders: this.orders.size, max: MAX_LINE_ORDERS }, 'more line orders than a grant carries: released ones left out');
    }
    return (this.grantLines = Object.fromEntries(all.map((s) => [s.deviceId, s.order])));
  }

  /**
   * Changes a device's order: `next` gets the order in force when this change's turn comes and
   * returns the new one (null: nothing to change). Written in this leader term first, then taken
   * into memory; an order that frees the line starts its release. `first`, when the order changes,
   * runs in the same turn before the write (a failure writes nothing): what must be stored before
   * the order (a dead letter's resolution), so that two changes racing for one line (a skip and the
   * retry's applied receipt) each find the order the other left, never a write of the loser.
   */
  change(deviceId: string, next: (o: LineOrder) => LineOrder | null, meta: { by: string; note: string | ((was: StoredLineOrder | null) => string) }, first?: () => Promise<void>): Promise<LineChange> {
    return this.turn(async () => {
      const term = this.d.term();
      if (!term) throw new BatonError('not-leader', `this runtime no longer leads: device ${deviceId}'s line order was not changed`);
      if (term.epoch !== this.loadedEpoch) {
        throw new BatonError('database-unavailable', `the line orders of this leader term are not loaded yet: device ${deviceId}'s line order was not changed; try again in a moment`, { deviceId });
      }
      if (this.unsure) await this.readBack();
      const before = this.order(deviceId);
      const after = next(before);
      if (after === null || same(before, after)) return { before, after: before, changed: false };
      if (first) await first();
      const note = typeof meta.note === 'function' ? meta.note(this.stored(deviceId)) : meta.note;
      const stored: StoredLineOrder = { deviceId, order: after, by: meta.by, at: this.d.clock.now(), note };
      try {
        // a write that gets no answer in time counts as failed, so one hung statement does not stop every later change
        await withDeadline(this.d.clock, this.d.store.setLineOrder(stored, term), this.d.deadlineMs, `storing device ${deviceId}'s line order`);
      } catch (err) {
        // refused in the term check: nothing written. Otherwise it may have been (or may still be)
        if (!isBatonError(err, 'not-leader')) this.doubt();
        throw err;
      }
      this.take(deviceId, stored);
      return { before, after, changed: true };
    });
  }

  /** Takes an order into memory (null: none stored); one that frees the line starts its release. True when it changed the order. */
  private take(deviceId: string, s: StoredLineOrder | null): boolean {
    const before = this.order(deviceId);
    const after = s?.order ?? NO_ORDER;
    if (s) this.orders.set(deviceId, s);
    else this.orders.delete(deviceId);
    this.grantLines = null;
    if (same(before, after)) return false;
    const freed = !heldBy(after) && (heldBy(before) || (pendingRetry(after) !== null && pendingRetry(after)?.n !== pendingRetry(before)?.n));
    if (freed) {
      this.releasing.add(deviceId);
      this.onRelease(deviceId);
    }
    return true;
  }

  /** A write's outcome is not known: the orders are read back before the next change, and once the write has had time to land. */
  private doubt(): void {
    this.unsure = true;
    this.readBackTimer ??= this.d.clock.setTimeout(() => {
      this.readBackTimer = null;
      void this.turn(() => this.readBack()).catch(() => {});
    }, this.d.deadlineMs);
  }

  /** Reads the stored orders of this term back: the stored ones stand. Unsure still if anything differed (or the read failed). */
  private async readBack(): Promise<void> {
    const term = this.d.term();
    if (!term || term.epoch !== this.loadedEpoch) return;
    let all: StoredLineOrder[];
    try {
      all = await withDeadline(this.d.clock, this.d.store.lineOrders(), this.d.deadlineMs, 'reading the line orders back');
    } catch (err) {
      this.doubt();
      throw err;
    }
    const stored = new Map(all.filter((o) => this.d.deviceSet.has(o.deviceId)).map((o) => [o.deviceId, o]));
    let differed = false;
    for (const deviceId of new Set([...this.orders.keys(), ...stored.keys()])) {
      const before = this.order(deviceId);
      if (!this.take(deviceId, stored.get(deviceId) ?? null)) continue;
      differed = true;
      this.d.log.warn({ deviceId, held: before, stored: this.order(deviceId) }, 'a line order read back differs from what this runtime held (a write whose answer was lost): the stored one stands');
    }
    this.unsure = false;
    if (differed) this.doubt();
  }

  private turn<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn);
    this.serial = run.catch(() => {});
    return run;
  }
}

const same = (a: LineOrder, b: LineOrder) =>
  a.paused === b.paused && a.blockedAt === b.blockedAt && a.releasedThrough === b.releasedThrough && a.retry?.seq === b.retry?.seq && a.retry?.n === b.retry?.n;
