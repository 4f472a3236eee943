/**
 * The event journal: the runtime's events a remote client follows (`baton serve`'s /v1/events),
 * numbered and kept for a while so that a client that lost its stream reads what it missed.
 *
 * What: `applied` (the seqs a receipt named applied, one entry per run of a device: receipts come
 * every few ms per agent, so runs are long), `dead-lettered`, `switch` (started, then each phase the
 * coordinator enters, then completed), `alarm` (raised, cleared). All of them happen
 * on the leader only (it alone reads receipts, switches and raises alarms), so a standby's journal
 * stays empty.
 *
 * Ids: `<term>-<n>`, the leader term the event happened in and its number in that term (from 1,
 * rising by 1). Ids do not survive a change of leader, nor a restart: another process (or this one
 * in a later term, after another may have led) knows nothing of what the term held, so `since()` of
 * an id of another term answers `leader-changed`, and the client reads the state afresh (the fate of
 * what it waits for) and follows on from the journal's newest id. An event heard while not leading
 * (the alarms cleared as a term ends) belongs to the term just ended; before any term, none is kept.
 *
 * Window: the last `capacity` entries (default 10,000) over all terms; an id whose successor was
 * dropped answers `too-old`. `since()` and `subscribe()` are synchronous, as is every record: a
 * caller that calls both in one turn misses nothing and gets nothing twice; `follow()` (baton serve's
 * port) does both in one call.
 */
import type { Logger } from 'pino';
import type { EventJournalView, FollowedEntry, JournalEntry, JournalEvent, JournalRead, SwitchStep } from '../api.ts';
import { BatonError } from '../errors.ts';
import type { Assignment } from '../../machines/coordinator.machine.ts';
import type { Clock, LeaderTerm } from '../ports.ts';
import type { RuntimeEventEmitter } from './events.ts';

/** entries kept by default */
export const JOURNAL_CAPACITY = 10_000;

export interface JournalDeps {
  events: Pick<RuntimeEventEmitter, 'first'>;
  clock: Pick<Clock, 'now'>;
  log: Logger;
  /** the leader term running now (null: not leading) */
  currentTerm(): LeaderTerm | null;
  capacity?: number;
}

export class EventJournal implements EventJournalView {
  private readonly ring: Array<JournalEntry | undefined>;
  /** index of the oldest entry kept, and how many are kept */
  private head = 0;
  private count = 0;
  /** the term entries are recorded in, and the number of the last one recorded in it */
  private term: number | null = null;
  private n = 0;
  private readonly listeners = new Set<(e: JournalEntry) => void>();

  constructor(private readonly d: JournalDeps) {
    this.ring = new Array(d.capacity ?? JOURNAL_CAPACITY);
    this.listen();
  }

  /** The entries recorded after `lastId`, oldest first, or why they cannot be told. */
  readonly since = (lastId: string): JournalRead => {
    const m = /^(\d{1,15})-(\d{1,15})$/.exec(lastId);
    if (!m) return this.refuse('unknown-id', `event id ${JSON.stringify(lastId.slice(0, 40))} is not one of this journal's (<term>-<n>)`);
    const [term, k] = [Number(m[1]), Number(m[2])];
    if (term !== this.term) {
      return this.refuse('leader-changed', `event ${lastId} is of leader term ${term}; this runtime's events are of term ${this.term ?? '(none yet)'} and it knows nothing of what other terms held`);
    }
    if (k > this.n) return this.refuse('unknown-id', `event ${lastId} was never recorded here (the newest is ${this.newest()})`);
    const after = this.n - k;
    if (after > this.count) return this.refuse('too-old', `events after ${lastId} are no longer kept (the journal keeps the last ${this.ring.length})`);
    return { ok: true, entries: this.newestOnes(after) };
  };

  /**
   * `baton serve`'s port: calls `listener` with every entry after `afterId` (null: only new ones), oldest
   * first, then with each new one as it is recorded, until the returned function is called. `data` is
   * the whole entry (what an SSE `data:` line carries). Throws `invalid-request` (details: `reason`,
   * `newest`) when `since()` cannot tell what followed `afterId`, before the listener hears anything.
   */
  readonly follow = (afterId: string | null, listener: (e: FollowedEntry) => void): (() => void) => {
    const read = afterId === null ? ({ ok: true, entries: [] } as const) : this.since(afterId);
    if (!read.ok) throw new BatonError('invalid-request', read.message, { field: 'Last-Event-ID', reason: read.reason, newest: read.newest });
    const send = (e: JournalEntry) => listener({ id: e.id, type: e.type, data: e });
    for (const e of read.entries) send(e);
    return this.subscribe(send);
  };

  /** Calls `listener` with each entry as it is recorded; returns what stops it. */
  readonly subscribe = (listener: (e: JournalEntry) => void): (() => void) => {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  };

  /** The id of the newest entry kept (null: none). */
  readonly newest = (): string | null => (this.count === 0 || this.term === null ? null : `${this.term}-${this.n}`);

  private refuse(reason: 'leader-changed' | 'too-old' | 'unknown-id', what: string): JournalRead {
    const newest = this.newest();
    return { ok: false, reason, newest, message: `${what}: read the state afresh (the fate of each message waited for), then follow on from ${newest ?? 'the next event'}` };
  }

  private newestOnes(k: number): JournalEntry[] {
    const out: JournalEntry[] = [];
    for (let i = this.count - k; i < this.count; i++) out.push(this.ring[(this.head + i) % this.ring.length]!);
    return out;
  }

  private record(e: JournalEvent): void {
    const term = this.d.currentTerm()?.epoch ?? this.term;
    if (term === null) return; // nothing of a term: a runtime that never led hears none of these
    if (term !== this.term) [this.term, this.n] = [term, 0];
    const entry: JournalEntry = { id: `${term}-${++this.n}`, at: this.d.clock.now(), ...e };
    const size = this.ring.length;
    this.ring[(this.head + this.count) % size] = entry;
    if (this.count < size) this.count++;
    else this.head = (this.head + 1) % size;
    for (const l of this.listeners) {
      try {
        l(entry);
      } catch (err) {
        this.d.log.warn({ err: (err as Error).message, id: entry.id }, 'an event journal listener failed; the others got the entry');
      }
    }
  }

  // first among the listeners: an event is recorded before what other listeners emit in answer to it
  // (the alarm a dead letter raises comes after the dead letter)
  private listen(): void {
    const on = this.d.events.first;
    on('receipts.applied', ({ ranges }) => {
      for (const { deviceId, from, to } of ranges) this.record({ type: 'applied', deviceId, from, to });
    });
    on('message.dead-lettered', ({ deviceId, seq, reason }) => this.record({ type: 'dead-lettered', deviceId, seq, reason }));
    on('switch.started', ({ assignment, reason }) => this.record({ ...switchOf('started', assignment), reason }));
    on('switch.phase', ({ assignment, phase }) => phase !== 'normal' && this.record(switchOf(phase, assignment)));
    on('switch.completed', ({ assignment }) => this.record(switchOf('completed', assignment)));
    on('alarm.raised', ({ alarm }) => this.record({ type: 'alarm', state: 'raised', alarm }));
    on('alarm.cleared', ({ alarm, clearedAt }) => this.record({ type: 'alarm', state: 'cleared', alarm, clearedAt }));
  }
}

function switchOf(step: SwitchStep, a: Assignment): Extract<JournalEvent, { type: 'switch' }> {
  return { type: 'switch', step, switchId: a.switchId, from: a.previousAgent, to: a.agentId || null, epoch: a.epoch };
}
