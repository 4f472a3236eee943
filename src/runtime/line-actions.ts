/**
 * The operator's actions on a device's line: `pause`, `resume`, `unblock` (retry or skip). Each is
 * refused on a runtime that does not lead (naming the leader) and for a device not configured;
 * writes the line's order in this leader term before anything changes in memory (line-orders.ts);
 * is idempotent (a repeat changes nothing and answers `already`); and records its outcome in the
 * audit table. `unblock` of a line that is not blocked is refused (`not-blocked`), saying how it
 * stands, unless its last block was released the way asked (then it is a repeat: `already`).
 * A skip while a retry of the seq is pending goes through (it is the way out of a retry that cannot
 * end), and its answer says that the retry may be on the wire and applied yet (line-receipts.ts).
 */
import type { ActionBy, ActionResult, RuntimeStatus } from '../api.ts';
import { BatonError } from '../errors.ts';
import type { AuditAction, Clock, DeadLetterStore, DeadLetterView, LineOrder, StoredLineOrder } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';
import { decodeMessage } from '../wire.ts';
import type { AuditLog } from './audit-log.ts';
import type { Leadership } from './leadership.ts';
import { blockedSeq, pendingRetry, type LineOrders } from './line-orders.ts';
import { notRunning } from './refusals.ts';

export interface LineActionsDeps {
  lines: Pick<LineOrders, 'change' | 'order' | 'stored' | 'nextRetryN'>;
  leadership: Pick<Leadership, 'currentTerm' | 'leader'>;
  runtimeId: string;
  state(): RuntimeStatus['state'];
  deviceSet: ReadonlySet<string>;
  audit: Pick<AuditLog, 'record'>;
  deadLetters: Pick<DeadLetterStore, 'findDeadLetter' | 'resolveDeadLetter'>;
  clock: Pick<Clock, 'now'>;
  /** how the active agent reports the device's line (the words of a refusal) */
  lane(deviceId: string): LaneReport | null;
}

type Unblock = { action: 'retry' | 'skip' } & ActionBy;

/** a blocked line's note is the device's answer: a pause or a resume leaves it */
const keepBlockNote = (note: string) => (was: StoredLineOrder | null) => (was && blockedSeq(was.order) !== null ? was.note : note);

export class LineActions {
  constructor(private readonly d: LineActionsDeps) {}

  readonly pause = async (deviceId: string, opts: ActionBy = {}): Promise<ActionResult> => {
    this.check(deviceId, 'pause');
    const by = opts.by ?? 'host';
    const r = await this.d.lines.change(deviceId, (o) => (o.paused ? null : { ...o, paused: true }), { by, note: keepBlockNote(`paused by ${by}`) });
    const detail = r.changed
      ? `device ${deviceId} paused: its messages are accepted and kept in the database, none is sent (a request already on the wire finishes); baton resume ${deviceId} sends them in order`
      : `device ${deviceId} was paused already: nothing changed`;
    return this.answer('pause', deviceId, by, r.changed, detail);
  };

  readonly resume = async (deviceId: string, opts: ActionBy = {}): Promise<ActionResult> => {
    this.check(deviceId, 'resume');
    const by = opts.by ?? 'host';
    const r = await this.d.lines.change(deviceId, (o) => (o.paused ? { ...o, paused: false } : null), { by, note: keepBlockNote(`resumed by ${by}`) });
    const at = blockedSeq(r.after);
    const still = at !== null && pendingRetry(r.after)?.seq !== at ? `; its line is still blocked at seq ${at}: baton unblock ${deviceId} --retry (after fixing the device) or --skip` : '';
    const detail = r.changed ? `device ${deviceId} resumed: what was kept for it goes out in seq order, then its new messages${still}` : `device ${deviceId} was not paused: nothing changed${still}`;
    return this.answer('resume', deviceId, by, r.changed, detail);
  };

  readonly unblock = async (deviceId: string, how: Unblock): Promise<ActionResult> => {
    this.check(deviceId, 'unblock');
    if (how?.action !== 'retry' && how?.action !== 'skip') throw new BatonError('invalid-config', `unblock needs { action: 'retry' } or { action: 'skip' } (got ${JSON.stringify(how?.action)}): device ${deviceId}'s line was not changed`);
    const by = how.by ?? 'host';
    const action: AuditAction = how.action === 'retry' ? 'unblock-retry' : 'unblock-skip';
    const o = this.d.lines.order(deviceId);
    const at = blockedSeq(o);
    if (at === null) return this.notBlocked(deviceId, o, how.action, by);
    const dead = await this.d.deadLetters.findDeadLetter(deviceId, at);
    return how.action === 'skip' ? this.skip(deviceId, at, dead, by) : this.retry(deviceId, at, dead, by, action);
  };

  private async skip(deviceId: string, at: number, dead: DeadLetterView | null, by: string): Promise<ActionResult> {
    // the dead letter first, in the order's turn: a skip asked again after a failure finds the line
    // blocked and resolves it then; the applied receipt of a retry racing with it (line-receipts.ts)
    // either released the line before (nothing to skip) or finds it skipped (and tells the truth after)
    const resolve = async () => {
      if (dead && dead.resolution === null) await this.d.deadLetters.resolveDeadLetter(dead.id, { kind: 'skipped', by, at: this.d.clock.now(), detail: `skipped: device ${deviceId}'s line went on with seq ${at + 1}` });
    };
    const r = await this.d.lines.change(deviceId, (o) => (blockedSeq(o) === at ? { ...o, releasedThrough: at, retry: null } : null), { by, note: `seq ${at} skipped by ${by}` }, resolve);
    // a retry of it may be on the wire: the agent sends no more attempts, but one already sent may be applied (line-receipts.ts)
    const retry = pendingRetry(r.before);
    const fate = retry?.seq === at
      ? `it is not sent again, but its retry ${retry.n} may be on the wire already: if the device applies that, seq ${at} counts applied and its dead letter${dead ? ` (${dead.id})` : ''} says retried; else it stays dead-lettered`
      : `it stays dead-lettered${dead ? ` (dead letter ${dead.id})` : ''} and will not be applied`;
    const detail = r.changed
      ? `seq ${at} of device ${deviceId} skipped: ${fate}; the line goes on with the messages kept behind it, in seq order`
      : `seq ${at} of device ${deviceId} was released already: nothing changed`;
    return this.answer('unblock-skip', deviceId, by, r.changed, detail);
  }

  private async retry(deviceId: string, at: number, dead: DeadLetterView | null, by: string, action: AuditAction): Promise<ActionResult> {
    const { lines } = this.d;
    if (pendingRetry(lines.order(deviceId))?.seq === at) return this.answer(action, deviceId, by, false, `seq ${at} of device ${deviceId} is being retried already: nothing changed`);
    const m = dead ? decodeMessage(Buffer.from(dead.payload, 'utf8')) : null;
    if (!dead || !m || !('message' in m) || m.message.seq !== at || m.message.deviceId !== deviceId) {
      const why = dead ? 'its dead letter does not hold the message readably' : 'no dead letter of it is stored yet (its agent reported the block; the dead letter may still be on its way: try again in a moment)';
      const text = `device ${deviceId} is blocked at seq ${at}, but ${why}: it cannot be sent again now. Or skip it (baton unblock ${deviceId} --skip) and dispatch the change again`;
      await this.refused(action, deviceId, by, text);
      throw new BatonError('unknown-dead-letter', text, { deviceId, seq: at });
    }
    if (dead.resolution?.kind === 'resent') {
      // its message went to the end of the line under a new seq: sent again here, the device would apply it twice
      const as = dead.resolution.seq !== undefined ? `as seq ${dead.resolution.seq}` : '(its resend did not finish: it may have gone out)';
      const text = `seq ${at} of device ${deviceId} cannot be retried: its dead letter ${dead.id} was resent by ${dead.resolution.by} ${as}, which waits behind the block; sent again now, the device would apply it twice. Skip it (baton unblock ${deviceId} --skip): the resent copy goes then`;
      await this.refused(action, deviceId, by, text);
      throw new BatonError('dead-letter-settled', text, { deviceId, seq: at, id: dead.id });
    }
    let n = 0;
    const r = await lines.change(deviceId, (o) => (blockedSeq(o) === at && pendingRetry(o)?.seq !== at ? { ...o, retry: { seq: at, n: (n = lines.nextRetryN(deviceId)) } } : null), { by, note: `seq ${at} retried by ${by}` });
    const detail = r.changed
      ? `seq ${at} of device ${deviceId} is sent again (retry ${n}, dead letter ${dead.id}): the agent sends it first, then the messages kept behind it, in seq order; if the device refuses it again, the line is blocked at seq ${at} again`
      : `seq ${at} of device ${deviceId} is being retried already: nothing changed`;
    return this.answer(action, deviceId, by, r.changed, detail);
  }

  /** A line not blocked: a repeat of the action that released its last block is `already`; anything else is refused, saying how the line stands. */
  private async notBlocked(deviceId: string, o: LineOrder, how: 'retry' | 'skip', by: string): Promise<ActionResult> {
    const action: AuditAction = how === 'retry' ? 'unblock-retry' : 'unblock-skip';
    const last = o.blockedAt;
    // the active agent reports a newer block the runtime has not recorded yet: not a repeat of the last release
    const lane = this.d.lane(deviceId);
    const newer = lane?.state === 'blocked' && lane.seq > o.releasedThrough;
    if (last !== null && !newer) {
      const dead = await this.d.deadLetters.findDeadLetter(deviceId, last);
      const kind = how === 'retry' ? 'retried' : 'skipped';
      if (dead?.resolution?.kind === kind) return this.answer(action, deviceId, by, false, `seq ${last} of device ${deviceId} was ${kind} already (by ${dead.resolution.by}): nothing changed`);
    }
    const text = `device ${deviceId} is not blocked: ${this.standing(deviceId, o)}; there is nothing to unblock`;
    await this.refused(action, deviceId, by, text);
    throw new BatonError('not-blocked', text, { deviceId });
  }

  /** how a line that is not blocked stands, in words */
  private standing(deviceId: string, o: LineOrder): string {
    const lane = this.d.lane(deviceId);
    if (o.paused) return `it is paused (baton resume ${deviceId} sends what was kept)`;
    if (lane?.state === 'blocked') return `the active agent reports it blocked at seq ${lane.seq}, but the runtime has not recorded the block yet (its dead letter is on its way, or the agent does not say when it blocks): try again in a moment`;
    if (lane?.state === 'retrying') return `its line is retrying seq ${lane.seq} (attempt ${lane.attempt}: ${lane.reason}); it goes on by itself once the device answers`;
    const last = o.blockedAt !== null ? ` (its last block, at seq ${o.blockedAt}, was released)` : '';
    return `its line flows${last}`;
  }

  /** refused on a standby, before the runtime runs, or for a device not configured */
  private check(deviceId: string, what: string): void {
    const { d } = this;
    const state = d.state();
    if (state !== 'running') throw notRunning(`runtime.${what}()`, state);
    if (!d.leadership.currentTerm()) {
      const leader = d.leadership.leader();
      throw new BatonError('not-leader', `this runtime (${d.runtimeId}) is standing by; ${leader ? `runtime ${leader} leads: ask it to ${what} device ${deviceId}` : 'no runtime leads right now: try again in a moment'} (nothing was changed)`, { leader });
    }
    if (!d.deviceSet.has(deviceId)) {
      const known = [...d.deviceSet].slice(0, 10).join(', ');
      throw new BatonError('unknown-device', `device ${JSON.stringify(deviceId)} is not configured on this runtime (its devices: ${known}${d.deviceSet.size > 10 ? ', …' : ''}): nothing was changed`, { deviceId });
    }
  }

  private async answer(action: AuditAction, target: string, by: string, changed: boolean, detail: string): Promise<ActionResult> {
    const outcome = changed ? 'done' : 'already';
    const entry = await this.d.audit.record({ action, target, by, outcome, detail });
    return { action, target, outcome, detail, auditId: entry.id };
  }

  /** a refusal is recorded too, as far as the database lets it (the refusal itself is what the caller gets) */
  private async refused(action: AuditAction, target: string, by: string, detail: string): Promise<void> {
    await this.d.audit.record({ action, target, by, outcome: 'refused', detail }).catch(() => {});
  }
}
