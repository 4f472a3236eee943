/**
 * The runtime's store, one object its parts hold from the start although the database is opened
 * only by `start()`: each call goes to the store opened then (the one given in `ports`, or the one
 * the composition root builds), behind deadlines (store-deadline.ts). Before `open()` calls go to
 * the given store as it is (none are made: the parts act only once the runtime runs).
 */
import type { Clock, Store } from '../ports.ts';
import { storeWithDeadlines } from './store-deadline.ts';

export class StoreSlot {
  private current: Store | undefined;
  /** what the parts hold */
  readonly store: Store;

  constructor(
    given: Store | undefined,
    private readonly clock: Clock,
    private readonly deadlineMs: number,
  ) {
    this.current = given;
    this.store = new Proxy({} as Store, {
      get: (_, prop) => {
        const s = this.current as unknown as Record<PropertyKey, unknown>;
        const v = s[prop];
        return typeof v === 'function' ? v.bind(s) : v;
      },
    });
  }

  /** The given store, or the one `build` opens, from now on behind deadlines. */
  async open(build: () => Promise<Store>): Promise<void> {
    this.current = storeWithDeadlines(this.current ?? (await build()), this.clock, this.deadlineMs);
  }

  /** After a failed start: closes whatever was opened, quietly. */
  async closeQuietly(): Promise<void> {
    await this.current?.close().catch(() => {});
  }
}
