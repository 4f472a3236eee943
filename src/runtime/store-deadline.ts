/**
 * Every Store call with a deadline: a query on a half-open connection (or to a database that stopped
 * answering) never returns by itself, and whatever waits on it (a park, the replay behind it, a
 * switch step) would wait for good. Past the deadline the call fails with `database-unavailable`,
 * and its caller's own error path (retry, read-back, backoff) takes over.
 */
import { withDeadline } from '../clock.ts';
import { BatonError } from '../errors.ts';
import type { Clock, Store } from '../ports.ts';

export function storeWithDeadlines(store: Store, clock: Clock, ms: number): Store {
  return new Proxy(store, {
    get(target, prop: keyof Store) {
      const f = target[prop];
      if (typeof f !== 'function' || prop === 'close' || prop === 'migrate') return f;
      return (...args: unknown[]) =>
        withDeadline(clock, (f as (...a: unknown[]) => Promise<unknown>).apply(target, args), ms, `PostgreSQL (${String(prop)})`).catch((err: unknown) => {
          if (err instanceof BatonError && err.code === 'timeout') throw new BatonError('database-unavailable', err.message, { call: String(prop) }, { cause: err });
          throw err;
        });
    },
  });
}
