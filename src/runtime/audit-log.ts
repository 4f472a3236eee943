/**
 * The audit log: every operator action's outcome, stored (the audit table), told to the host
 * ('action.done') and logged. The parts that carry out actions are given `Pick<AuditLog, 'record'>`;
 * `runtime.audit()` reads it back.
 */
import { BatonError } from '../errors.ts';
import type { Logger } from 'pino';
import type { AuditEntry, AuditStore, Clock } from '../ports.ts';
import type { RuntimeStatus } from '../api.ts';
import type { Emit } from './events.ts';
import { notRunning } from './refusals.ts';

export interface AuditLogDeps {
  store: AuditStore;
  clock: Pick<Clock, 'now'>;
  emit: Emit;
  log: Logger;
  /** the runtime's state: the table is read only while it runs */
  state: () => RuntimeStatus['state'];
}

/** what a refusal to store says the action itself did, by its outcome */
const whatWasDone: Record<AuditEntry['outcome'], string> = {
  done: 'the action was carried out',
  already: 'the action changed nothing (it was in force already)',
  refused: 'the action was refused and changed nothing',
  failed: 'the action failed',
};

export class AuditLog {
  constructor(private readonly d: AuditLogDeps) {}

  /**
   * Stores the entry (stamped with the wall clock now), emits 'action.done' and logs it. When the
   * store refuses, nothing is emitted and it rejects with `database-unavailable`: the action's own
   * outcome stands (the message says which), only its audit row is missing; the caller decides
   * what to answer.
   */
  async record(e: Omit<AuditEntry, 'id' | 'at'>): Promise<AuditEntry> {
    const { store, clock, emit, log } = this.d;
    let entry: AuditEntry;
    try {
      entry = await store.recordAudit({ ...e, at: clock.now() });
    } catch (err) {
      const cause = (err as Error)?.message ?? String(err);
      log.error({ audit: e, err: cause }, 'an operator action could not be recorded in the audit table');
      throw new BatonError(
        'database-unavailable',
        `the audit row for ${e.action} of ${e.target} by ${e.by} was not stored (${cause}): ${whatWasDone[e.outcome]}, but the audit table does not show it`,
        { action: e.action, target: e.target, by: e.by, outcome: e.outcome },
        { cause: err },
      );
    }
    emit('action.done', { entry });
    log.info({ audit: entry }, `operator action ${entry.action} of ${entry.target} by ${entry.by}: ${entry.outcome}`);
    return entry;
  }

  /** the newest entries first (`limit` default 100), of one target if given; only while the runtime runs */
  async list(opts?: { limit?: number; target?: string }): Promise<AuditEntry[]> {
    const state = this.d.state();
    if (state !== 'running') throw notRunning('runtime.audit()', state);
    return this.d.store.listAudit(opts);
  }
}
