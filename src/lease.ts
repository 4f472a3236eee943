/**
 * The agent's lease: the right to write to devices, granted and renewed by the leading runtime.
 * A grant echoes the agent's own monotonic time of the heartbeat it answers, so the lease runs
 * from *before* the runtime issued it: the runtime knows the lease has expired at most
 * `durationMs` after its last grant, whatever the network or a stopped process delayed. A grant
 * read late (after SIGCONT, say) is already expired when it arrives.
 */
import type { Clock } from './ports.ts';

/** What the runtime sends on the control channel. */
export interface LeaseGrant {
  type: 'lease';
  agentId: string;
  /** the agent process the grant answers (a restarted agent ignores its predecessor's grants) */
  incarnation: string;
  epoch: number;
  /** the agent's monotonic time when it sent the heartbeat this grant answers */
  echo: number;
  durationMs: number;
  /** highest seq known applied, per device */
  watermarks: Record<string, number>;
}

export function parseGrant(v: unknown): LeaseGrant | null {
  const g = v as Partial<LeaseGrant> | null;
  if (typeof g !== 'object' || g === null || g.type !== 'lease') return null;
  if (typeof g.agentId !== 'string' || typeof g.incarnation !== 'string') return null;
  if (!Number.isSafeInteger(g.epoch) || typeof g.echo !== 'number' || typeof g.durationMs !== 'number') return null;
  const watermarks: Record<string, number> = {};
  for (const [k, seq] of Object.entries(g.watermarks ?? {})) if (Number.isSafeInteger(seq)) watermarks[k] = seq as number;
  return { type: 'lease', agentId: g.agentId, incarnation: g.incarnation, epoch: g.epoch!, echo: g.echo, durationMs: g.durationMs, watermarks };
}

export class Lease {
  epoch = 0;
  private validUntil = -Infinity;
  private everHeld = false;
  private waiters: Array<(epoch: number) => void> = [];

  constructor(
    private readonly clock: Clock,
    readonly incarnation: string,
  ) {}

  /** Takes a grant; returns false when it is stale, foreign or from a lower epoch. */
  grant(g: LeaseGrant): boolean {
    if (g.incarnation !== this.incarnation || g.epoch < this.epoch) return false;
    const until = g.echo + g.durationMs;
    if (until <= this.clock.monotonic()) return false;
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

  /** ms since a lease held once has lapsed (0 while valid or never held) */
  lapsedFor(): number {
    if (!this.everHeld) return 0;
    return Math.max(0, this.clock.monotonic() - this.validUntil);
  }
}
