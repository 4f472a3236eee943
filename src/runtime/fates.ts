/**
 * `fate()`: what became of one accepted message (device, seq): `accepted` (durable, not known applied
 * or dead-lettered yet), `applied`, or `dead-lettered` with the device's answer and the dead letter's
 * resolution. A seq no `dispatch()` ever handed out is refused (`unknown-message`).
 *
 * Two sources, named in the answer's `source`:
 * - `ledger`, on the leader once it has loaded what the previous leader stored (the receipts reader
 *   subscribed): the applied ledger, exact for the seqs of its own term. "Never accepted" means above
 *   every seq handed out (the stored reservations when the term began, and each seq sent since). A
 *   seq below that which the ledger cannot place (withdrawn when its publish failed, the unused end
 *   of a seq block, or sent by the previous leader and not settled yet) answers `accepted`: no client
 *   holds a seq dispatch() did not return, and taking a live one for unknown would make it send again.
 *   `waitMs` waits on the ledger's own waiters (`applied()`), woken by the receipt that settles the
 *   seq: no polling. A wait ends early when this runtime stops leading (`not-leader`: ask the new
 *   leader, which can wait) or stops (`runtime-stopped`); at `waitMs` it answers `accepted`.
 * - `stored`, on a standby (or a leader still loading): the durable tables the leader writes before it
 *   acks each receipt: the dead letters, each device's watermark and the settled runs above it, and
 *   the seq reservations (a seq at or above `next_seq` was never handed out; reserved and unused
 *   ones answer `accepted`). True as of the leader's last receipt taken. A standby cannot wait (no
 *   receipt reaches it): asked to wait for a seq not settled there, it refuses with `not-leader`
 *   naming the leader, so that a server sends the client there.
 * Both share the residual imprecision of `applied()`: a seq at or below a stored watermark that has
 * no dead letter counts as applied.
 */
import type { MessageFate, RuntimeStatus } from '../api.ts';
import { BatonError, isBatonError } from '../errors.ts';
import type { DeadLetterStore, DeadLetterView, DeliveryStore, SettledRecord } from '../ports.ts';
import type { AppliedAccounting } from './accounting.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { RuntimeEventEmitter } from './events.ts';
import type { Leadership } from './leadership.ts';
import { actionNotLeader, notRunning } from './refusals.ts';

/** the longest `fate()` waits, ms */
export const MAX_FATE_WAIT_MS = 60_000;

export interface FateDeps {
  ledger: Pick<AppliedLedger, 'isApplied' | 'isDeadLettered' | 'handedOut'>;
  accounting: Pick<AppliedAccounting, 'applied'>;
  store: Pick<DeadLetterStore, 'findDeadLetter'> & Pick<DeliveryStore, 'deviceStreams' | 'settledRecords'>;
  deviceSet: ReadonlySet<string>;
  runtimeId: string;
  state(): RuntimeStatus['state'];
  /** built after this part: only asked once the runtime runs */
  leadership(): Pick<Leadership, 'leading' | 'leader'>;
  /** settles once the receipts reader's last subscribe or cancel is done: a subscription means the ledger holds what the previous leader stored */
  loaded(): Promise<unknown>;
  events: Pick<RuntimeEventEmitter, 'on'>;
}

type Key = { deviceId: string; seq: number };

export class Fates {
  /** the waits under way: a lost leadership or a stop ends them */
  private readonly waits = new Set<AbortController>();

  constructor(private readonly d: FateDeps) {
    d.events.on('leader.lost', () => this.abortAll(this.notLeading('fate() stopped waiting: this runtime no longer leads, so no receipt settles anything here')));
  }

  /** `Runtime.fate()` */
  readonly fate = async ({ deviceId, seq }: Key, { waitMs = 0 }: { waitMs?: number } = {}): Promise<MessageFate> => {
    this.check(deviceId, seq, waitMs);
    const state = this.d.state();
    if (state !== 'running') throw notRunning('fate()', state);
    if (await this.ledgerReady()) {
      const now = await this.fromLedger(deviceId, seq);
      return now.fate !== 'accepted' || waitMs === 0 ? now : this.waitLedger({ deviceId, seq }, waitMs);
    }
    const stored = await this.fromStore(deviceId, seq);
    if (stored.fate !== 'accepted' || waitMs === 0) return stored;
    throw this.notLeading(`fate(): seq ${seq} of device ${deviceId} is not settled in the stored tables, and only the leading runtime hears the receipt that settles it; it was not waited for`);
  };

  /** The runtime stops: no receipt settles anything here any more. */
  readonly stopped = () => {
    this.abortAll(new BatonError('runtime-stopped', 'fate() stopped waiting: the runtime stopped; the message stays queued: ask the runtime that leads now'));
  };

  private check(deviceId: string, seq: number, waitMs: number): void {
    if (!this.d.deviceSet.has(deviceId)) {
      throw new BatonError('unknown-device', `fate(): device ${JSON.stringify(deviceId)} is not configured (configured: ${[...this.d.deviceSet].join(', ')})`, { deviceId });
    }
    if (!Number.isSafeInteger(seq) || seq < 1) throw new BatonError('invalid-request', `fate(): seq must be a whole number >= 1 (got ${JSON.stringify(seq)})`, { field: 'seq' });
    if (!Number.isSafeInteger(waitMs) || waitMs < 0 || waitMs > MAX_FATE_WAIT_MS) {
      throw new BatonError('invalid-request', `fate(): waitMs must be a whole number of milliseconds from 0 to ${MAX_FATE_WAIT_MS} (got ${JSON.stringify(waitMs)})`, { field: 'waitMs' });
    }
  }

  private async ledgerReady(): Promise<boolean> {
    const lead = this.d.leadership();
    return lead.leading && (await this.d.loaded()) !== null && lead.leading;
  }

  private async fromLedger(deviceId: string, seq: number): Promise<MessageFate> {
    const { ledger } = this.d;
    const handedOut = ledger.handedOut(deviceId);
    if (seq > handedOut) throw unknownMessage(deviceId, seq, handedOut);
    const applied = ledger.isApplied(deviceId, seq);
    if (!applied && !ledger.isDeadLettered(deviceId, seq)) return { deviceId, seq, fate: 'accepted', source: 'ledger' };
    return settled(deviceId, seq, applied, await this.d.store.findDeadLetter(deviceId, seq), 'ledger');
  }

  private async fromStore(deviceId: string, seq: number): Promise<MessageFate> {
    const { store } = this.d;
    const next = (await store.deviceStreams()).find((s) => s.deviceId === deviceId)?.nextSeq ?? 1;
    if (seq >= next) throw unknownMessage(deviceId, seq, next - 1);
    const letter = await store.findDeadLetter(deviceId, seq);
    const record = (await store.settledRecords()).find((r) => r.deviceId === deviceId);
    const applied = record !== undefined && isSettled(record, seq);
    if (!applied && !letter) return { deviceId, seq, fate: 'accepted', source: 'stored' };
    return settled(deviceId, seq, applied, letter, 'stored');
  }

  private async waitLedger(key: Key, waitMs: number): Promise<MessageFate> {
    const wait = new AbortController();
    this.waits.add(wait);
    try {
      await this.d.accounting.applied(key, { timeoutMs: waitMs, signal: wait.signal });
    } catch (err) {
      // dead-lettered, or still outstanding at waitMs: both answered as they stand now
      if (!isBatonError(err, 'device-rejected') && !isBatonError(err, 'timeout')) throw err;
    } finally {
      this.waits.delete(wait);
    }
    return this.fate(key);
  }

  private abortAll(reason: BatonError): void {
    for (const w of this.waits) w.abort(reason);
    this.waits.clear();
  }

  private notLeading(what: string): BatonError {
    return actionNotLeader(this.d.runtimeId, this.d.leadership().leader(), what);
  }
}

/** The fate of a seq known settled: dead-lettered while its dead letter stands (an operator's retry that applied it resolves it `retried`). */
function settled(deviceId: string, seq: number, applied: boolean, letter: DeadLetterView | null, source: MessageFate['source']): MessageFate {
  const deadLetter = letter ? { deadLetter: { id: letter.id, resolution: letter.resolution } } : {};
  if (letter && letter.resolution?.kind !== 'retried') {
    return { deviceId, seq, fate: 'dead-lettered', answer: { status: letter.status, reason: letter.reason, response: letter.response }, ...deadLetter, source };
  }
  // the ledger's dead-lettered seq whose stored dead letter is gone (none is deleted: kept for completeness)
  if (!applied && !letter) return { deviceId, seq, fate: 'dead-lettered', source };
  return { deviceId, seq, fate: 'applied', ...deadLetter, source };
}

function isSettled(r: SettledRecord, seq: number): boolean {
  return seq <= r.watermark || r.ranges.some(([from, to]) => from <= seq && seq <= to);
}

function unknownMessage(deviceId: string, seq: number, handedOut: number): BatonError {
  const upTo = handedOut > 0 ? `seqs handed out so far end at ${handedOut}` : 'no seq was handed out to it yet';
  return new BatonError('unknown-message', `device ${deviceId} has no message with seq ${seq}: ${upTo}. It was never accepted: dispatch it to have it delivered`, { deviceId, seq, handedOut });
}
