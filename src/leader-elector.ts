/**
 * One runtime leads: it holds a lease row in PostgreSQL (judged by the database's clock), renews
 * it every third of its time to live, and stops acting as soon as a renewal fails. The others
 * try to take it at the same pace and take over once it lapses.
 */
import type { Logger } from 'pino';
import type { Clock, Store } from './ports.ts';

export interface LeaderElectorOptions {
  store: Pick<Store, 'acquireLeadership' | 'releaseLeadership'>;
  clock: Clock;
  logger: Logger;
  id: string;
  ttlMs: number;
  onWon(): void;
  onLost(holder: string | null): void;
}

export class LeaderElector {
  leading = false;
  holder: string | null = null;
  private timer: { cancel(): void } | null = null;
  private stopped = false;

  constructor(private readonly o: LeaderElectorOptions) {}

  async start(): Promise<void> {
    await this.tick();
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const r = await this.o.store.acquireLeadership(this.o.id, this.o.ttlMs);
      this.holder = r.holder;
      if (r.leader && !this.leading) {
        this.leading = true;
        this.o.logger.info({ leaderEpoch: r.epoch }, 'this runtime leads');
        this.o.onWon();
      } else if (!r.leader && this.leading) {
        this.lose(r.holder, 'another runtime took the leadership');
      }
    } catch (err) {
      if (this.leading) this.lose(null, `cannot renew the leadership (${(err as Error).message})`);
    }
    if (!this.stopped) this.timer = this.o.clock.setTimeout(() => void this.tick(), Math.max(50, Math.floor(this.o.ttlMs / 3)));
  }

  private lose(holder: string | null, why: string): void {
    this.leading = false;
    this.o.logger.warn({ holder, why }, 'this runtime no longer leads: it stops acting');
    this.o.onLost(holder);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    if (this.leading) {
      this.leading = false;
      await this.o.store.releaseLeadership(this.o.id).catch(() => {});
    }
  }
}
