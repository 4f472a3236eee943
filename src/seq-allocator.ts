/**
 * Hands out seqs per device, strictly increasing and never reused across restarts: blocks are
 * reserved in `device_streams` one round trip per `blockSize` messages. Callers are served in the
 * order they asked, per device, so seq order is dispatch order.
 */
import type { Store } from './ports.ts';

type Waiter = (err: Error | null, seq: number) => void;

interface Stream {
  next: number;
  end: number; // exclusive
  waiters: Waiter[];
  fetching: boolean;
}

export class SeqAllocator {
  private readonly streams = new Map<string, Stream>();

  constructor(
    private readonly store: Pick<Store, 'reserveSeqs'>,
    private readonly blockSize: number,
  ) {}

  /** Calls `cb` with the device's next seq: at once when the block has room, else after a reservation. */
  take(deviceId: string, cb: Waiter): void {
    let s = this.streams.get(deviceId);
    if (!s) {
      s = { next: 0, end: 0, waiters: [], fetching: false };
      this.streams.set(deviceId, s);
    }
    if (s.waiters.length === 0 && s.next < s.end) return cb(null, s.next++);
    s.waiters.push(cb);
    this.fill(deviceId, s);
  }

  private fill(deviceId: string, s: Stream): void {
    if (s.fetching) return;
    s.fetching = true;
    const want = Math.max(this.blockSize, s.waiters.length);
    this.store.reserveSeqs(deviceId, want).then(
      (first) => {
        s.fetching = false;
        s.next = first;
        s.end = first + want;
        while (s.waiters.length > 0 && s.next < s.end) s.waiters.shift()!(null, s.next++);
        if (s.waiters.length > 0) this.fill(deviceId, s);
      },
      (err: Error) => {
        s.fetching = false;
        for (const w of s.waiters.splice(0)) w(err, 0);
      },
    );
  }
}
