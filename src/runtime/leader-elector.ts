/**
 * One runtime leads: it holds a lease row in PostgreSQL (judged by the database's clock) and renews
 * it every third of its time to live. The others try to take it at the same pace and take over
 * once it lapses.
 *
 * The lease discipline: this runtime counts its lease on its own monotonic clock from the *start*
 * of the renewal that last succeeded: valid until start + ttl - margin. The database set the row's
 * expiry to (its now() when the statement ran) + ttl, and that statement ran after our start, so
 * by our clock the row cannot lapse (and no other runtime can take it) before start + ttl; the
 * margin (a tenth of the ttl) absorbs a difference in clock rates and lets an action checked just
 * before the end land before the next leader's first one. `leading` reads the clock each time, so
 * a paused process that wakes up past its validity is not leading even before its timer fires;
 * the timer then stops it (onLost) whether or not the renewal query ever answers. Every query has
 * a deadline (ttl - margin: past it, its answer could not extend the validity any more); a later
 * answer is ignored and counts as a failure.
 *
 * Terms: the row's epoch changes whenever the holder changes or the row is taken after it expired.
 * A term is one unbroken stretch of validity; `continued` tells onWon that no other runtime led
 * since this process's previous term (the same epoch, or the next one taken back by this process).
 */
import type { Logger } from 'pino';
import { withDeadline } from '../clock.ts';
import type { Clock, Leadership, LeadershipStore, LeaderTerm } from '../ports.ts';

export interface LeaderElectorOptions {
  store: LeadershipStore;
  clock: Clock;
  logger: Logger;
  id: string;
  ttlMs: number;
  /** the base URL this runtime advertises with its term (null: none) */
  url?: string | null;
  onWon(term: LeaderTerm & { continued: boolean }): void;
  onLost(holder: string | null): void;
}

/** ms between the starts of two renewals (one at a time: a slow one delays the next) */
export const renewalPeriod = (ttlMs: number) => Math.max(50, Math.floor(ttlMs / 3));
/** ms before the database could let the lease lapse that this runtime stops acting (see the header) */
export const leaderMargin = (ttlMs: number) => Math.ceil(ttlMs / 10);

export class LeaderElector {
  /** the last holder the database named (maybe this runtime, maybe stale) */
  holder: string | null = null;
  /** the URL that holder advertised (null: none, or nobody holds the row) */
  holderUrl: string | null = null;
  /** the base URL this runtime advertises with its term, from its next take or renewal (null: none) */
  url: string | null;
  private term: { epoch: number; validUntil: number } | null = null;
  private lastEpoch: number | null = null;
  private timer: { cancel(): void } | null = null;
  private expiry: { cancel(): void } | null = null;
  private stopped = false;

  constructor(private readonly o: LeaderElectorOptions) {
    this.url = o.url ?? null;
  }

  /** true only while this runtime's lease is certainly valid by its own clock */
  get leading(): boolean {
    return this.term !== null && this.o.clock.monotonic() < this.term.validUntil;
  }

  /** the term this runtime leads in right now, or null */
  currentTerm(): LeaderTerm | null {
    return this.leading ? { holder: this.o.id, epoch: this.term!.epoch } : null;
  }

  /** who leads as far as this runtime knows: itself while leading, never itself otherwise */
  leader(): string | null {
    if (this.leading) return this.o.id;
    return this.holder === this.o.id ? null : this.holder;
  }

  /** who leads as far as this runtime knows, with the base URL it advertised (null: nobody leads, as far as it knows) */
  leaderAt(): { id: string; url: string | null } | null {
    if (this.leading) return { id: this.o.id, url: this.url };
    const id = this.leader();
    return id === null ? null : { id, url: this.holderUrl };
  }

  async start(): Promise<void> {
    await this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    const period = renewalPeriod(this.o.ttlMs);
    const started = this.o.clock.monotonic();
    try {
      // an answer is useful as long as the validity it gives (from `started`) has not run out: a slow
      // renewal under load still renews; only one that could no longer help counts as failed
      // a renewal names its term; once that term is over here, only a fresh take (a new epoch) leads again
      const renew = this.term?.epoch ?? null;
      const r = await withDeadline(this.o.clock, this.o.store.acquireLeadership(this.o.id, this.o.ttlMs, renew, this.url), this.o.ttlMs - leaderMargin(this.o.ttlMs), 'the leadership query');
      if (this.stopped) return;
      if (renew !== null && this.term?.epoch !== renew) {
        // the term it renewed ended here while it was on its way (the lease ran out): never revived,
        // since statements of that term may still be in flight; the next tick takes a new term
        this.heard(r);
      } else this.answered(r, started);
    } catch (err) {
      if (this.stopped) return;
      if (this.term) this.o.logger.warn({ err: (err as Error).message }, 'a leadership renewal failed; still leading until the lease runs out');
    }
    if (this.stopped) return;
    const wait = Math.max(0, started + period - this.o.clock.monotonic());
    this.timer = this.o.clock.setTimeout(() => void this.tick(), wait);
  }

  private heard(r: Leadership): void {
    this.holder = r.holder;
    this.holderUrl = r.holder === null ? null : r.url;
  }

  private answered(r: Leadership, started: number): void {
    this.heard(r);
    if (!r.leader) {
      if (this.term) this.lose(r.holder, 'another runtime took the leadership');
      return;
    }
    const validUntil = started + this.o.ttlMs - leaderMargin(this.o.ttlMs);
    if (this.term && (this.term.epoch !== r.epoch || !this.leading)) {
      // lapsed (the timer has not run yet) or, impossibly, another term: end this one first
      this.lose(null, this.term.epoch !== r.epoch ? 'the leadership term changed' : 'the lease ran out before a renewal succeeded');
    }
    if (validUntil <= this.o.clock.monotonic()) return; // too late to act on
    if (this.term) {
      this.term.validUntil = Math.max(this.term.validUntil, validUntil);
    } else {
      // nobody else led in between: the same term (a lapse only this process saw), or the next one
      // taken back by this process after the row expired (another holder would have raised it too)
      const continued = this.lastEpoch !== null && r.epoch - this.lastEpoch <= 1;
      this.term = { epoch: r.epoch, validUntil };
      this.o.logger.info({ leaderEpoch: r.epoch, continued }, 'this runtime leads');
      this.o.onWon({ holder: this.o.id, epoch: r.epoch, continued });
    }
    this.armExpiry();
  }

  /** stops leading the moment the validity ends, whether or not a renewal is still in flight */
  private armExpiry(): void {
    this.expiry?.cancel();
    const t = this.term;
    if (!t) return;
    this.expiry = this.o.clock.setTimeout(() => {
      this.expiry = null;
      if (this.term !== t) return;
      if (this.leading) this.armExpiry();
      else this.lose(null, 'the lease ran out before a renewal succeeded');
    }, Math.max(0, t.validUntil - this.o.clock.monotonic()));
  }

  private lose(holder: string | null, why: string): void {
    if (!this.term) return;
    this.lastEpoch = this.term.epoch;
    this.term = null;
    this.expiry?.cancel();
    this.expiry = null;
    this.o.logger.warn({ holder, why }, 'this runtime no longer leads: it stops acting');
    this.o.onLost(holder);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    this.expiry?.cancel();
    if (this.term) {
      this.term = null;
      await withDeadline(this.o.clock, this.o.store.releaseLeadership(this.o.id), renewalPeriod(this.o.ttlMs), 'releasing the leadership').catch(() => {});
    }
  }
}
