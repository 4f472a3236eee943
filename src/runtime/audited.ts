/**
 * Runs one operator action and records its outcome in the audit table: `done` or `already` with
 * what it did, or `refused` with why (the BatonError it throws, unchanged, to its caller). A refusal
 * that concerns no target (this runtime does not lead, is not running, or its database does not
 * answer) is not recorded: the action was asked of the wrong runtime, or could not be recorded.
 *
 * The audit row is written after the action: an action that was done stays done when its row cannot
 * be written, and the error says so (the caller must not do it again).
 */
import type { ActionResult, AuditAction, AuditEntry } from '../api.ts';
import { BatonError, isBatonError, type BatonErrorCode } from '../errors.ts';
import type { AuditLog } from './audit-log.ts';

/** The audit log, as an action uses it. */
export type AuditRecorder = Pick<AuditLog, 'record'>;

/** What an action's body answers: its outcome, the words for the audit, and fields the caller gets besides. */
export interface ActionOutcome<X> {
  outcome: 'done' | 'already';
  detail: string;
  extra: X;
}

const NOT_ABOUT_THE_TARGET = new Set<BatonErrorCode>(['not-leader', 'runtime-not-started', 'runtime-stopped', 'database-unavailable']);

/** Who asked, when the caller did not say: the host's own code. */
export const byOf = (opts?: { by?: string }) => (opts?.by && opts.by.trim() ? opts.by : 'host');

export async function audited<X extends object>(
  audit: AuditRecorder,
  what: { action: AuditAction; target: string; by: string },
  body: () => Promise<ActionOutcome<X>>,
): Promise<ActionResult & X> {
  let done: ActionOutcome<X>;
  try {
    done = await body();
  } catch (err) {
    if (isBatonError(err) && !NOT_ABOUT_THE_TARGET.has(err.code)) {
      // the refusal is what the caller must hear: an audit row that cannot be written does not replace it
      await audit.record({ ...what, outcome: 'refused', detail: err.message }).catch(() => {});
    }
    throw err;
  }
  let entry: AuditEntry;
  try {
    entry = await audit.record({ ...what, outcome: done.outcome, detail: done.detail });
  } catch (err) {
    // the audit log's words say the action stands and only its row is missing; these add what it did
    throw new BatonError(
      'database-unavailable',
      `${done.detail}; but ${(err as Error).message}`,
      { ...what, outcome: done.outcome, ...done.extra },
      { cause: err },
    );
  }
  return { action: what.action, target: what.target, outcome: done.outcome, detail: done.detail, auditId: entry.id, ...done.extra };
}
