/**
 * Parks messages in `message_queues` with group commit: messages that arrive while a transaction
 * is running wait for the next one, so a burst costs a few round trips, not one per message.
 * Each `park()` resolves only once its row is committed.
 */
import { BatonError } from './errors.ts';
import type { Store, WireMessage } from './ports.ts';

interface Pending {
  message: WireMessage;
  resolve(): void;
  reject(err: Error): void;
}

export class Parker {
  private buffer: Pending[] = [];
  private running: Promise<void> | null = null;
  /** the newest park, settled either way */
  private last: Promise<void> = Promise.resolve();
  /** rows committed since start */
  committed = 0;

  constructor(
    private readonly store: Pick<Store, 'park'>,
    private readonly batchSize: number,
  ) {}

  park(message: WireMessage): Promise<void> {
    const parked = new Promise<void>((resolve, reject) => {
      this.buffer.push({ message, resolve, reject });
      this.running ??= this.loop();
    });
    // batches settle in the order parks arrive: once the last one settles, every earlier one has
    this.last = parked.catch(() => {});
    return parked;
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
        const batch = this.buffer.splice(0, this.batchSize);
        try {
          await this.store.park(batch.map((p) => p.message));
          this.committed += batch.length;
          for (const p of batch) p.resolve();
        } catch (err) {
          const e = new BatonError('database-unavailable', `parking failed (${(err as Error).message}); these messages were not stored: dispatch them again`, {}, { cause: err });
          for (const p of batch) p.reject(e);
        }
      }
    } finally {
      this.running = null;
    }
  }
}
