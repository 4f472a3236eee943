/**
 * The operator's dead-letter actions: list and show (any running runtime: they read the database),
 * resend and drop (the leader only, each audited and idempotent).
 *
 * Resend dispatches the dead letter's message again as a NEW message, through `dispatch()`: it gets
 * a new seq and goes at the end of the device's line. Not under its old seq: seqs only rise, and the
 * device's watermark is already past it (the dead letter settled it), so an agent would take the old
 * seq for a redelivery. The message is read from the dead letter's payload, the signed wire message
 * the agent received; only one this deployment's runtimes signed is sent again (an agent's receipt
 * cannot make the runtime sign a message of its own). A malformed one (seq 0) has no device to go to.
 *
 * A resend is claimed on the dead letter (resolution `resent`, no seq yet) before it is dispatched,
 * and the seq written after: a resend that fails half-way never leaves the dead letter open to be
 * sent a second time, and one in doubt says so. Actions on one dead letter run one at a time.
 * A dead letter whose seq an operator's retry is sending again is not resent (nor is a retried
 * seq's dead letter resent, see line-actions.ts): the device would get the message twice, the
 * second copy after the changes kept behind it.
 */
import type { Dispatched, RuntimeStatus } from '../api.ts';
import { BatonError, isBatonError } from '../errors.ts';
import type { Clock, DeadLetterStore, DeadLetterView } from '../ports.ts';
import { messageProblem } from '../trust.ts';
import { decodeMessage, type ConfigMessage } from '../wire.ts';
import { audited, byOf, type AuditRecorder } from './audited.ts';
import type { Leadership } from './leadership.ts';
import { actionNotLeader, notRunning } from './refusals.ts';

export interface DeadLetterActionDeps {
  store: Pick<DeadLetterStore, 'listDeadLetters' | 'getDeadLetter' | 'resolveDeadLetter'>;
  audit: AuditRecorder;
  /** the runtime's `dispatch()` */
  dispatch(m: ConfigMessage): Promise<Dispatched>;
  /** K_s: checks that a payload is a message a runtime of this deployment signed */
  streamK: Buffer;
  clock: Pick<Clock, 'now'>;
  state(): RuntimeStatus['state'];
  runtimeId: string;
  leadership: Pick<Leadership, 'leading' | 'leader'>;
  /** whether an operator's retry of the device's seq is pending (its message is being sent again) */
  retrying(deviceId: string, seq: number): boolean;
}

type Filter = { deviceId?: string; reason?: string; open?: boolean; limit?: number };
type Resolution = NonNullable<DeadLetterView['resolution']>;

/** The longest drop reason kept, in characters (the rest is cut). */
export const MAX_REASON = 500;

export class DeadLetterActions {
  /** the action running on each dead letter id: the next one waits for it */
  private readonly busy = new Map<number, Promise<unknown>>();

  constructor(private readonly d: DeadLetterActionDeps) {}

  readonly deadLetters = async (filter: Filter = {}): Promise<DeadLetterView[]> => {
    this.running('deadLetters()');
    if (filter.limit !== undefined && (!Number.isSafeInteger(filter.limit) || filter.limit < 1)) {
      throw new BatonError('invalid-request', `deadLetters(): limit must be a whole number >= 1 (got ${JSON.stringify(filter.limit)}); nothing was listed`, { field: 'limit' });
    }
    return this.d.store.listDeadLetters(filter);
  };

  readonly deadLetter = async (id: number): Promise<DeadLetterView | null> => {
    this.running('deadLetter()');
    checkId(id, 'deadLetter()');
    return this.d.store.getDeadLetter(id);
  };

  readonly resendDeadLetter = (id: number, opts?: { by?: string }) =>
    this.serial(id, () => audited(this.d.audit, { action: 'dead-letter-resend', target: `dead-letter:${id}`, by: byOf(opts) }, () => this.resend(id, byOf(opts))));

  readonly dropDeadLetter = (id: number, opts: { reason: string; by?: string }) =>
    this.serial(id, () => audited(this.d.audit, { action: 'dead-letter-drop', target: `dead-letter:${id}`, by: byOf(opts) }, () => this.drop(id, opts?.reason, byOf(opts))));

  private async resend(id: number, by: string) {
    const dl = await this.leaderGets(id, 'resent');
    const was = dl.resolution;
    const what = `dead letter ${id} (device ${dl.deviceId}, seq ${dl.seq})`;
    if (was?.kind === 'resent') {
      if (was.seq === undefined) throw new BatonError('dead-letter-settled', `${what}: its resend by ${was.by} did not finish (${was.detail}); it may have gone out: check the device (baton devices), then dispatch the change again yourself if it did not. Nothing was sent now`, { id });
      return { outcome: 'already' as const, detail: `${what} was resent already, as seq ${was.seq} (by ${was.by})`, extra: { seq: was.seq } };
    }
    if (was?.kind === 'retried') throw new BatonError('dead-letter-settled', `${what} was retried by ${was.by} and the device applied it: sending it again would apply it twice, after newer changes. Nothing was sent; dispatch a new message if you mean it`, { id });
    const message = this.messageOf(dl, what);
    const retrying = () => new BatonError('dead-letter-settled', `${what} is being retried (baton unblock ${dl.deviceId} --retry sends it again under seq ${dl.seq}): resending it too would apply it twice. Nothing was sent`, { id });
    if (this.d.retrying(dl.deviceId, dl.seq)) throw retrying();
    const at = this.d.clock.now();
    await this.resolve(id, { kind: 'resent', by, at, detail: `being resent by ${by}${was ? ` (it was ${was.kind} before)` : ''}` });
    // a retry ordered while the claim was being written: it goes, this resend does not
    if (this.d.retrying(dl.deviceId, dl.seq)) {
      await this.d.store.resolveDeadLetter(id, was).catch(() => {});
      throw retrying();
    }
    let seq: number;
    try {
      ({ seq } = await this.d.dispatch(message));
    } catch (err) {
      const maybe = isBatonError(err) && err.details.maybeStored === true;
      // not sent for sure: it goes back to how it was; in doubt it stays claimed, so it is never sent twice
      if (!maybe) await this.d.store.resolveDeadLetter(id, was).catch(() => {});
      const why = (err as Error).message;
      throw new BatonError(isBatonError(err) ? err.code : 'broker-unavailable', maybe ? `${what} may have been resent (${why}); it stays marked resent: check the device before anything else` : `${what} was not resent: ${why}`, { id }, { cause: err });
    }
    const detail = `${what} resent as seq ${seq}, at the end of the device's line`;
    const recorded = await this.d.store.resolveDeadLetter(id, { kind: 'resent', by, at, detail, seq }).then(
      () => '',
      (err: Error) => ` (the dead letter could not be updated with the new seq: ${err.message}; it shows the resend unfinished)`,
    );
    return { outcome: 'done' as const, detail: detail + recorded, extra: { seq } };
  }

  private async drop(id: number, reason: unknown, by: string) {
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new BatonError('invalid-request', `dropDeadLetter(${id}): a reason is required (a non-empty string: why it is dropped, for whoever reads the audit later); nothing was changed`, { field: 'reason' });
    }
    const words = reason.trim().slice(0, MAX_REASON);
    const dl = await this.leaderGets(id, 'dropped');
    const was = dl.resolution;
    const what = `dead letter ${id} (device ${dl.deviceId}, seq ${dl.seq})`;
    if (was?.kind === 'dropped') return { outcome: 'already' as const, detail: `${what} was dropped already by ${was.by}: ${was.detail}`, extra: {} };
    if (was?.kind === 'resent' || was?.kind === 'retried') {
      const sent = was.kind === 'resent' ? `resent${was.seq !== undefined ? ` as seq ${was.seq}` : ''}` : 'retried and applied';
      throw new BatonError('dead-letter-settled', `${what} was ${sent} by ${was.by}: dropping it now would hide that it went out; nothing was changed`, { id });
    }
    // its retry may be applied any moment (and resolve it `retried`): dropped now, the drop would say it never went out
    if (this.d.retrying(dl.deviceId, dl.seq)) throw new BatonError('dead-letter-settled', `${what} is being retried (baton unblock ${dl.deviceId} --retry sent it again): dropping it now would hide that it went out; nothing was changed`, { id });
    await this.resolve(id, { kind: 'dropped', by, at: this.d.clock.now(), detail: words });
    return { outcome: 'done' as const, detail: `${what} dropped: ${words}`, extra: {} };
  }

  /** The dead letter, for an action only the leader takes. */
  private async leaderGets(id: number, verb: string): Promise<DeadLetterView> {
    checkId(id, `dead letter ${JSON.stringify(id)}`);
    this.running(verb === 'resent' ? `resendDeadLetter(${id})` : `dropDeadLetter(${id})`);
    if (!this.d.leadership.leading) throw actionNotLeader(this.d.runtimeId, this.d.leadership.leader(), `dead letter ${id} was not ${verb}`);
    const dl = await this.d.store.getDeadLetter(id);
    if (!dl) throw new BatonError('unknown-dead-letter', `there is no dead letter ${id} (baton dead-letters lists them); nothing was ${verb}`, { id });
    return dl;
  }

  private async resolve(id: number, r: Resolution): Promise<void> {
    if (!(await this.d.store.resolveDeadLetter(id, r))) throw new BatonError('unknown-dead-letter', `dead letter ${id} is gone from the database; nothing was changed`, { id });
  }

  /** What to dispatch again: the message in the payload, if a runtime of this deployment signed it. */
  private messageOf(dl: DeadLetterView, what: string): ConfigMessage {
    const refuse = (why: string) => new BatonError('invalid-message', `${what} cannot be resent: ${why}; nothing was sent (drop it with a reason instead)`, { id: dl.id });
    if (dl.seq <= 0) throw refuse(`the agent could not read its message (${dl.reason}), so there is no device or seq to send it to`);
    const decoded = decodeMessage(Buffer.from(dl.payload, 'utf8'));
    if ('malformed' in decoded) throw refuse(`its stored payload is not a baton message (${decoded.malformed})`);
    const m = decoded.message;
    const forged = messageProblem(this.d.streamK, m);
    if (forged) throw refuse(`its stored payload is ${forged}`);
    if (m.deviceId !== dl.deviceId || m.seq !== dl.seq) throw refuse(`its stored payload is device ${m.deviceId} seq ${m.seq}, another message`);
    return { deviceId: m.deviceId, method: m.method, path: m.path, body: m.body ?? null, ...(m.key !== undefined ? { key: m.key } : {}) };
  }

  private running(what: string): void {
    const state = this.d.state();
    if (state !== 'running') throw notRunning(what, state);
  }

  private serial<T>(id: number, run: () => Promise<T>): Promise<T> {
    const next = (this.busy.get(id) ?? Promise.resolve()).catch(() => {}).then(run);
    this.busy.set(id, next);
    const forget = () => void (this.busy.get(id) === next && this.busy.delete(id));
    next.then(forget, forget);
    return next;
  }
}

function checkId(id: unknown, what: string): asserts id is number {
  if (!Number.isSafeInteger(id) || (id as number) < 1) throw new BatonError('invalid-request', `${what}: a dead letter id is a whole number >= 1 (got ${JSON.stringify(id)})`, { field: 'id' });
}
