/**
 * The kill-to-resume figure: from the first fault that took an agent out to the first write a device
 * applied under a newer epoch than the one in force before it.
 */
import type { RuntimeFleet, RuntimeNews } from './runtime-fleet.ts';

export class Recovery {
  private killedAt: number | null = null;
  private resumedAt: number | null = null;
  private lastEpoch = 0;

  /** An agent was killed or stopped; only the first fault counts (a later one must not make the figure negative). */
  faultStruck(): void {
    this.killedAt ??= performance.now();
  }

  /** Hears from the runtimes which epoch is in force (`coordinator.active`) until the first fault. */
  watch(runtimes: RuntimeFleet): void {
    runtimes.events.on('event', ({ name, payload }: RuntimeNews) => {
      if (name === 'coordinator.active' && this.killedAt === null) this.lastEpoch = (payload.assignment as { epoch: number }).epoch;
    });
  }

  /** A device applied a write under `epoch`. */
  applied(epoch: number | null): void {
    if (this.killedAt !== null && this.resumedAt === null && epoch !== null && epoch > this.lastEpoch) this.resumedAt = performance.now();
  }

  killToResumeMs(): number | null {
    return this.killedAt !== null && this.resumedAt !== null ? Math.round(this.resumedAt - this.killedAt) : null;
  }
}
