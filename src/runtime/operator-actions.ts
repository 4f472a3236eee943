/**
 * The wiring of the operator actions that read the dead letters, settle them, and wait for the
 * stream to drain: what createRuntime hands to the Runtime (dead-letter-actions.ts, drained.ts).
 */
import type { Runtime, RuntimeStatus } from '../api.ts';
import type { DeadLetterStore } from '../ports.ts';
import type { AuditLog } from './audit-log.ts';
import { DeadLetterActions } from './dead-letter-actions.ts';
import type { Intake } from './dispatch.ts';
import type { Drains } from './drained.ts';
import type { RuntimeEventEmitter } from './events.ts';
import type { Leadership } from './leadership.ts';
import type { RuntimeSetup } from './options.ts';

export type DeadLetterAndDrainActions = Pick<Runtime, 'deadLetters' | 'deadLetter' | 'resendDeadLetter' | 'dropDeadLetter' | 'drained'>;

export function deadLetterAndDrainActions(
  d: Pick<RuntimeSetup, 'clock' | 'streamK' | 'runtimeId'> & {
    store: Pick<DeadLetterStore, 'listDeadLetters' | 'getDeadLetter' | 'resolveDeadLetter'>;
    auditLog: Pick<AuditLog, 'record'>;
    drains: Drains;
    events: Pick<RuntimeEventEmitter, 'on'>;
    intake: Pick<Intake, 'dispatch'>;
    state(): RuntimeStatus['state'];
    leadership: Pick<Leadership, 'leading' | 'leader'>;
    retrying(deviceId: string, seq: number): boolean;
  },
): DeadLetterAndDrainActions {
  const dl = new DeadLetterActions({ ...d, audit: d.auditLog, dispatch: d.intake.dispatch });
  // nothing settles a waiter of a runtime that no longer reads receipts
  d.events.on('leader.lost', d.drains.leaderLost);
  return { deadLetters: dl.deadLetters, deadLetter: dl.deadLetter, resendDeadLetter: dl.resendDeadLetter, dropDeadLetter: dl.dropDeadLetter, drained: d.drains.drained };
}
