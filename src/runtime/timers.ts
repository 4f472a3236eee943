/**
 * The runtime's periodic tasks, on its clock: each runs again `ms` after its last run ended (a slow
 * one never overlaps itself); a failure is logged at debug and the next run comes anyway. All are
 * cancelled together when the runtime stops.
 */
import type { Logger } from 'pino';
import type { Clock } from '../ports.ts';

export class Timers {
  private readonly timers: Array<{ cancel(): void }> = [];

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  every(ms: number, fn: () => Promise<void> | void): void {
    const { clock, log } = this;
    let handle: { cancel(): void } | null = null;
    let cancelled = false;
    const tick = () => {
      Promise.resolve()
        .then(fn)
        .catch((err) => log.debug({ err: (err as Error).message }, 'periodic task failed'))
        .finally(() => {
          if (!cancelled) handle = clock.setTimeout(tick, ms);
        });
    };
    handle = clock.setTimeout(tick, ms);
    this.timers.push({ cancel: () => ((cancelled = true), handle?.cancel()) });
  }

  cancelAll(): void {
    for (const t of this.timers.splice(0)) t.cancel();
  }
}
