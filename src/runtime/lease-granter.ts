/**
 * Grants and renews the active agent's lease: each heartbeat of the active agent is answered with
 * a grant that echoes the heartbeat's own timestamp (see lease.ts). During a switch nobody gets a
 * lease; the new agent gets one once the switch recorded it and, unless every device fences by
 * epoch, once the old agent's last lease has certainly expired. Grants go out only while this
 * runtime certainly leads (`mayGrant`), and a new leader term waits out the leases the previous
 * leader may have granted: it cannot know when that one last granted, only that it stopped
 * before this term began. Each grant is sealed with the key of the agent it is for (`seal`), and
 * names that agent's process and the heartbeat it answers: no other process takes it. Every grant
 * carries the device watermarks and the line orders that stand (a lost grant loses nothing).
 *
 * The wait is kept per cause (the previous leader's term; each agent switched away from), so that
 * an agent that gave its lease back (a planned handover: its `released` receipt) ends the wait for
 * its own lease only, never one for another agent's or the previous leader's.
 */
import type { Broker, Clock } from '../ports.ts';
import type { HeartbeatEvent, LeaseGrant, LineOrder } from '../side-channel.ts';

/** processes per agent whose last grant is kept */
const INCARNATIONS_KEPT = 8;

export interface LeaseGranterOptions {
  broker: Pick<Broker, 'publishEvent'>;
  clock: Clock;
  durationMs: number;
  /** false when every device refuses stale epochs: the new agent may write at once */
  waitForOldLease: boolean;
  /** true only while this runtime's leader term is certainly valid: no grant otherwise */
  mayGrant(): boolean;
  /** the grant as it goes on the wire: sealed with the key of the agent it is for */
  seal(grant: LeaseGrant): object;
  /** the agent that may write now, whenever it changes (the runtime notes who holds each epoch) */
  onTarget?(target: { agentId: string; epoch: number }): void;
}

export class LeaseGranter {
  private readonly lastGrant = new Map<string, number>();
  private readonly lastHeartbeat = new Map<string, HeartbeatEvent>();
  private target: { agentId: string; epoch: number } | null = null;
  /** until when (monotonic) leases the previous leader may have granted can run */
  private termWait = 0;
  /** per agent switched away from: until when the last lease this runtime granted it can run */
  private readonly leaseWaits = new Map<string, number>();
  /** per agent, per process (incarnation, the newest last): when this runtime last granted it a lease */
  private readonly grantedTo = new Map<string, Map<string, number>>();
  private pending: { cancel(): void } | null = null;
  /** when the current target got its first grant (of this target, in this term), or null */
  private firstGrant: number | null = null;
  watermarks: () => Record<string, number> = () => ({});
  /** the runtime's line orders (line-orders.ts), repeated in every grant */
  lines: () => Record<string, LineOrder> = () => ({});

  constructor(private readonly o: LeaseGranterOptions) {}

  /**
   * This runtime began a leader term. Unless it continues this runtime's own previous term (no
   * other runtime led in between, and every grant since is in `lastGrant`), the previous leader
   * may have granted a lease up to the moment this term began: none from here for `durationMs`.
   */
  leaderWon({ continued }: { continued: boolean }): void {
    if (this.o.waitForOldLease && !continued) this.termWait = Math.max(this.termWait, this.o.clock.monotonic() + this.o.durationMs);
  }

  /** No grant before this (monotonic): the latest of the waits kept. */
  private notBefore(): number {
    return Math.max(this.termWait, ...this.leaseWaits.values());
  }

  /** The term ended: no target, no grant scheduled. */
  leaderLost(): void {
    this.pending?.cancel();
    this.pending = null;
    this.target = null;
    this.firstGrant = null;
  }

  /** The agent that may write now (null: nobody, during a switch), granted at once when it can be. */
  setTarget(target: { agentId: string; epoch: number } | null): void {
    if (target?.agentId !== this.target?.agentId || target?.epoch !== this.target?.epoch) this.firstGrant = null;
    this.target = target;
    if (target) this.o.onTarget?.(target);
    const last = target && this.lastHeartbeat.get(target.agentId);
    if (last) this.onHeartbeat(last);
  }

  /** Answers a heartbeat of the target agent with a grant (or schedules it for `notBefore`). */
  onHeartbeat(h: HeartbeatEvent): boolean {
    this.lastHeartbeat.set(h.agentId, h);
    const t = this.target;
    if (!t || t.agentId !== h.agentId || !this.o.mayGrant()) return false;
    const now = this.o.clock.monotonic();
    const notBefore = this.notBefore();
    if (now < notBefore) {
      this.pending ??= this.o.clock.setTimeout(() => {
        this.pending = null;
        const last = this.lastHeartbeat.get(h.agentId);
        if (last) this.onHeartbeat(last);
      }, notBefore - now);
      return false;
    }
    const grant: LeaseGrant = {
      type: 'lease',
      agentId: h.agentId,
      incarnation: h.incarnation,
      epoch: t.epoch,
      beat: h.beat,
      durationMs: this.o.durationMs,
      watermarks: this.watermarks(),
    };
    const lines = this.lines();
    if (Object.keys(lines).length > 0) grant.lines = lines;
    this.lastGrant.set(h.agentId, now);
    this.noteGrant(h.agentId, h.incarnation, now);
    this.firstGrant ??= now;
    void this.o.broker.publishEvent('control', this.o.seal(grant), { key: h.agentId, ttlMs: this.o.durationMs });
    return true;
  }

  /**
   * ms since the current target's first grant in this term, or null before it: an agent consumes
   * its queue only under a lease, so its queue's consumer count says nothing before then.
   */
  grantedFor(): number | null {
    return this.firstGrant === null ? null : this.o.clock.monotonic() - this.firstGrant;
  }

  /** A switch away from `agentId` began: no grants, and none until its lease has certainly expired. */
  switchingFrom(agentId: string): void {
    this.target = null;
    this.firstGrant = null;
    if (!this.o.waitForOldLease) return;
    const now = this.o.clock.monotonic();
    for (const [id, until] of this.leaseWaits) if (until <= now) this.leaseWaits.delete(id);
    const last = this.lastGrant.get(agentId);
    if (last !== undefined) this.leaseWaits.set(agentId, Math.max(this.leaseWaits.get(agentId) ?? 0, last + this.o.durationMs));
  }

  private noteGrant(agentId: string, incarnation: string, now: number): void {
    const by = this.grantedTo.get(agentId) ?? new Map<string, number>();
    by.delete(incarnation);
    by.set(incarnation, now);
    if (by.size > INCARNATIONS_KEPT) by.delete(by.keys().next().value!);
    this.grantedTo.set(agentId, by);
  }

  /**
   * The process `incarnation` of `agentId` gave its lease back (its `released` receipt, for the epoch
   * it held): it takes no grant of that epoch again, so its lease needs no waiting out. What another
   * process of the same agent may hold (two started under one id) is still waited out, as are the
   * other waits.
   */
  returned(agentId: string, incarnation: string): void {
    const others = [...(this.grantedTo.get(agentId) ?? new Map<string, number>())].filter(([i]) => i !== incarnation).map(([, at]) => at + this.o.durationMs);
    const wait = Math.max(0, ...others);
    if (this.o.waitForOldLease && wait > this.o.clock.monotonic()) this.leaseWaits.set(agentId, wait);
    else this.leaseWaits.delete(agentId);
    this.pending?.cancel();
    this.pending = null;
    const last = this.target && this.lastHeartbeat.get(this.target.agentId);
    if (last) this.onHeartbeat(last);
  }

  /** The process this runtime last granted `agentId` a lease to (what a release request names), or null. */
  incarnationGranted(agentId: string): string | null {
    return [...(this.grantedTo.get(agentId)?.keys() ?? [])].at(-1) ?? null;
  }

  /** An agent the registry forgot (dead and unheard for long): nothing of it is kept. */
  forget(agentId: string): void {
    this.lastHeartbeat.delete(agentId);
    this.lastGrant.delete(agentId);
    this.grantedTo.delete(agentId);
  }

  /** ms until the old agent's lease has certainly expired (0 when it has) */
  waitMs(): number {
    return Math.max(0, this.notBefore() - this.o.clock.monotonic());
  }

  stop(): void {
    this.pending?.cancel();
    this.target = null;
  }
}
