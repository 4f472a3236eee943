/**
 * The agent's lease: the right to write to devices, granted and renewed by the leading runtime.
 * A grant echoes the `beat` of the heartbeat it answers, and the agent runs the lease from the
 * moment it sent that heartbeat, by its own monotonic clock (which it noted then: no time from the
 * wire is trusted). So the lease runs from *before* the runtime issued it: the runtime knows it
 * has expired at most `durationMs` after its last grant, whatever the network or a stopped
 * process delayed. A grant read late (after SIGCONT, say) is already expired when it arrives; one
 * answering a heartbeat this process never sent (another incarnation, a forged beat) is refused.
 * A lease given back (a planned handover, `relinquish`) is over for good: no grant of its epoch or
 * a lower one is taken again, not even one the runtime sent before it asked for the lease back.
 */
import type { Clock } from '../ports.ts';
import type { LeaseGrant } from '../side-channel.ts';

/** heartbeats whose send time an agent remembers: a grant answers one of the last few (a lease spans a handful of beats) */
const REMEMBERED_BEATS = 256;

export class Lease {
  epoch = 0;
  private validUntil = -Infinity;
  private everHeld = false;
  private waiters: Array<(epoch: number) => void> = [];
  /** beat -> this process's monotonic time when it sent that heartbeat */
  private readonly sent = new Map<number, number>();
  private lastBeat = 0;
  /** the beat of the newest grant taken: an older one is a replay (or late) */
  private grantedBeat = 0;
  /** the lowest epoch a grant may bring: above every epoch given back */
  private floor = 0;

  constructor(
    private readonly clock: Clock,
    readonly incarnation: string,
  ) {}

  /** A heartbeat goes out now: returns its beat (rising), and notes when it went. */
  beat(): number {
    const beat = ++this.lastBeat;
    this.sent.set(beat, this.clock.monotonic());
    if (this.sent.size > REMEMBERED_BEATS) this.sent.delete(this.sent.keys().next().value!);
    return beat;
  }

  /**
   * Takes a grant; returns false when it is stale (answers an older heartbeat than the last grant,
   * or is expired), foreign (another incarnation, a heartbeat not sent or long forgotten) or from a
   * lower epoch.
   */
  grant(g: LeaseGrant): boolean {
    if (g.incarnation !== this.incarnation || g.epoch < this.epoch || g.epoch < this.floor || g.beat < this.grantedBeat) return false;
    const sentAt = this.sent.get(g.beat);
    if (sentAt === undefined) return false;
    const until = sentAt + g.durationMs;
    if (until <= this.clock.monotonic()) return false;
    this.grantedBeat = g.beat;
    this.validUntil = g.epoch > this.epoch ? until : Math.max(this.validUntil, until);
    this.epoch = g.epoch;
    this.everHeld = true;
    for (const w of this.waiters.splice(0)) w(this.epoch);
    return true;
  }

  /** The epoch to write under, or null when the lease is not valid now. */
  current(): number | null {
    return this.clock.monotonic() < this.validUntil ? this.epoch : null;
  }

  /** Resolves with the epoch once the lease is valid. */
  acquire(): Promise<number> {
    const e = this.current();
    if (e !== null) return Promise.resolve(e);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** A device said this epoch is stale: stop writing until a newer grant. */
  revoke(): void {
    this.validUntil = -Infinity;
  }

  /** The lease of `epoch` (and any lower) is given back: no write under it from now on, and no grant of it taken again. */
  relinquish(epoch: number): void {
    this.floor = Math.max(this.floor, epoch + 1);
    this.validUntil = -Infinity;
  }

  /** ms since a lease held once has lapsed (0 while valid or never held) */
  lapsedFor(): number {
    if (!this.everHeld) return 0;
    return Math.max(0, this.clock.monotonic() - this.validUntil);
  }
}
