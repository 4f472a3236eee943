/**
 * Hands out seqs per device, strictly increasing and never reused across restarts: blocks are
 * reserved in `device_streams` one round trip per `blockSize` messages. Callers are served in the
 * order they asked, per device, so seq order is dispatch order.
 *
 * Blocks belong to a leader term and die with it: another runtime may have led since and handed
 * out higher seqs, so a block cached before would put lower seqs behind them (and the agent would
 * skip them as already applied). Each reservation names the term, and the store refuses it once
 * the term is over; outside a term nothing is handed out.
 */
import { BatonError } from '../errors.ts';
import type { LeaderTerm, SeqStore } from '../ports.ts';

type Waiter = (err: Error | null, seq: number) => void;

interface Stream {
  next: number;
  end: number; // exclusive
  waiters: Waiter[];
  fetching: boolean;
}

interface Term {
  term: LeaderTerm;
  streams: Map<string, Stream>;
}

export class SeqAllocator {
  private current: Term | null = null;

  constructor(
    private readonly store: SeqStore,
    private readonly blockSize: number,
  ) {}

  /** A leader term began: seqs come from new reservations (any block of an earlier term is gone). */
  beginTerm(term: LeaderTerm): void {
    this.endTerm();
    this.current = { term, streams: new Map() };
  }

  /** The term ended: cached blocks are dropped and callers still waiting fail with `not-leader`. */
  endTerm(): void {
    const t = this.current;
    this.current = null;
    if (!t) return;
    for (const [deviceId, s] of t.streams) for (const w of s.waiters.splice(0)) w(ended(t.term, deviceId), 0);
  }

  /** The seq the device's next message gets from the block in hand (null: none in hand; the next comes from a new reservation). */
  peek(deviceId: string): number | null {
    const s = this.current?.streams.get(deviceId);
    return s && s.next < s.end ? s.next : null;
  }

  /** Calls `cb` with the device's next seq: at once when the block has room, else after a reservation. */
  take(deviceId: string, cb: Waiter): void {
    const t = this.current;
    if (!t) return cb(new BatonError('not-leader', `this runtime does not lead: no seq for device ${deviceId}; the message was not stored`, { deviceId }), 0);
    let s = t.streams.get(deviceId);
    if (!s) {
      s = { next: 0, end: 0, waiters: [], fetching: false };
      t.streams.set(deviceId, s);
    }
    if (s.waiters.length === 0 && s.next < s.end) return cb(null, s.next++);
    s.waiters.push(cb);
    this.fill(t, deviceId, s);
  }

  private fill(t: Term, deviceId: string, s: Stream): void {
    if (s.fetching) return;
    s.fetching = true;
    const want = Math.max(this.blockSize, s.waiters.length);
    this.store.reserveSeqs(deviceId, want, t.term).then(
      (first) => {
        s.fetching = false;
        if (this.current !== t) return; // the term ended meanwhile: its waiters failed, the block dies
        s.next = first;
        s.end = first + want;
        while (s.waiters.length > 0 && s.next < s.end) s.waiters.shift()!(null, s.next++);
        if (s.waiters.length > 0) this.fill(t, deviceId, s);
      },
      (err: Error) => {
        s.fetching = false;
        for (const w of s.waiters.splice(0)) w(err, 0);
      },
    );
  }
}

const ended = (term: LeaderTerm, deviceId: string) =>
  new BatonError('not-leader', `this runtime's leader term ${term.epoch} ended before device ${deviceId} got a seq; the message was not stored: dispatch it to the leading runtime`, { deviceId, term });
