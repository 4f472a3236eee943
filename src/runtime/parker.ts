/**
 * Parks messages in `message_queues` with group commit: messages that arrive while a transaction
 * is running wait for the next one, so a burst costs a few round trips, not one per message.
 * Each `park()` resolves only once its row is committed. A park whose outcome is unknown (the
 * connection dropped around COMMIT) is resolved by reading its rows back, never by guessing: a
 * row that is there is reported stored (it will be replayed), one that is not is reported not stored,
 * unless parked rows of its device were replayed (sent and deleted) since it began: its row may have
 * been among them, so not finding it proves nothing (`replaying`).
 */
import { backoff, delay } from '../clock.ts';
import { BatonError } from '../errors.ts';
import type { Clock, LeaderTerm, ParkingStore, WireMessage } from '../ports.ts';

interface Pending {
  message: WireMessage;
  /** the leader term the message's seq was handed out in: it is stored only while that term lasts */
  term: LeaderTerm;
  /** true while no other runtime can have replayed (and deleted) this row: only then is "not found" "not stored" */
  sole: () => boolean;
  /** the device's replays begun before this park (see `replaying`) */
  replays: number;
  resolve(): void;
  reject(err: Error): void;
}

export interface ParkerOptions {
  batchSize: number;
  clock: Clock;
  /** how long to keep asking the database what a failed park stored before giving up, ms */
  resolveWithinMs?: number;
}

export class Parker {
  private buffer: Pending[] = [];
  private running: Promise<void> | null = null;
  /** the newest park, settled either way */
  private last: Promise<void> = Promise.resolve();
  /** rows committed since start */
  committed = 0;
  /** per device, the replays of its parked rows begun so far */
  private readonly replays = new Map<string, number>();

  constructor(
    private readonly store: Pick<ParkingStore, 'park' | 'resolveParked'>,
    private readonly o: ParkerOptions,
  ) {}

  /**
   * `term`: the leader term the message belongs to; the row is written in that term or not at all
   * (`not-leader`). `sole`: true while no other runtime can have replayed the row (that term lasts).
   */
  park(message: WireMessage, term: LeaderTerm, sole: () => boolean = () => true): Promise<void> {
    const parked = new Promise<void>((resolve, reject) => {
      this.buffer.push({ message, term, sole, replays: this.replays.get(message.deviceId) ?? 0, resolve, reject });
      this.running ??= this.loop();
    });
    // batches settle in the order parks arrive: once the last one settles, every earlier one has
    this.last = parked.catch(() => {});
    return parked;
  }

  /** Parked rows of these devices are about to be sent and deleted (a replay): a park under way may find its row gone. */
  replaying(deviceIds: Iterable<string>): void {
    for (const id of new Set(deviceIds)) this.replays.set(id, (this.replays.get(id) ?? 0) + 1);
  }

  /** Resolves once everything parked so far is committed (or failed). Parks that arrive later are
   * not waited for: under a steady stream the parker never goes idle, and a flush must still end. */
  flush(): Promise<void> {
    return this.last;
  }

  private async loop(): Promise<void> {
    await Promise.resolve(); // let the current burst join the first batch
    try {
      while (this.buffer.length > 0) {
        const batch = this.buffer.splice(0, sameTerm(this.buffer, this.o.batchSize));
        try {
          await this.store.park(batch.map((p) => p.message), batch[0]!.term);
          this.settle(batch, () => true);
        } catch (err) {
          if (err instanceof BatonError && err.code === 'not-leader') {
            // refused before anything was written (the term is over): certainly not stored
            for (const p of batch) p.reject(err);
            continue;
          }
          const stored = await this.readBack(batch);
          if (stored) this.settle(batch, (p) => stored.has(key(p.message)), err as Error);
          else {
            const e = new BatonError('database-unavailable', `parking failed (${(err as Error).message}) and the database could not be asked whether the rows were stored: these messages may or may not be delivered; dispatching them again may apply them twice`, { outcome: 'unknown', unknown: batch.length }, { cause: err });
            for (const p of batch) p.reject(e);
          }
        }
      }
    } finally {
      this.running = null;
    }
  }

  private settle(batch: Pending[], stored: (p: Pending) => boolean, cause?: Error): void {
    for (const p of batch) {
      if (stored(p)) {
        this.committed++;
        p.resolve();
      } else if (!p.sole() || (this.replays.get(p.message.deviceId) ?? 0) !== p.replays) {
        // another leader, or a replay here, may have sent the row (and deleted it) since: not finding it proves nothing
        p.reject(new BatonError('database-unavailable', `parking failed (${cause?.message}) and its row may have been replayed meanwhile: the message may or may not be delivered; dispatching it again may apply it twice`, { deviceId: p.message.deviceId, seq: p.message.seq, outcome: 'unknown' }, { cause }));
      } else {
        p.reject(new BatonError('database-unavailable', `parking failed (${cause?.message}); the message was not stored: dispatch it again`, { deviceId: p.message.deviceId, seq: p.message.seq }, { cause }));
      }
    }
  }

  /** The keys of the batch that are parked, or null when the database does not answer in time. */
  private async readBack(batch: Pending[]): Promise<Set<string> | null> {
    const until = this.o.clock.monotonic() + (this.o.resolveWithinMs ?? 30_000);
    for (let attempt = 1; ; attempt++) {
      try {
        const found = await this.store.resolveParked(batch.map((p) => ({ deviceId: p.message.deviceId, seq: p.message.seq })));
        return new Set(found.map(key));
      } catch {
        if (this.o.clock.monotonic() >= until) return null;
        await delay(this.o.clock, backoff(attempt, 50, 1000, () => 0.5)); // no jitter: the simulation replays exactly
      }
    }
  }
}

const key = (k: { deviceId: string; seq: number }) => `${k.deviceId}:${k.seq}`;

/** how many of the first pending parks (at most `max`) belong to the first one's term: one statement is in one term */
function sameTerm(buffer: Pending[], max: number): number {
  const t = buffer[0]!.term;
  let n = 1;
  while (n < Math.min(max, buffer.length) && buffer[n]!.term.holder === t.holder && buffer[n]!.term.epoch === t.epoch) n++;
  return n;
}
