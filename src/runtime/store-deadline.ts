/**
 * Every Store call with a deadline: a query on a half-open connection (or to a database that stopped
 * answering) never returns by itself, and whatever waits on it (a park, the replay behind it, a
 * switch step) would wait for good. Past the deadline the call fails with `database-unavailable`,
 * and its caller's own error path (retry, read-back, backoff) takes over. Works over the whole Store
 * or any of its roles: every call but the lifecycle's (`migrate`, `close`) gets the deadline.
 */
import { withDeadline } from '../clock.ts';
import { BatonError } from '../errors.ts';
import type { Clock, Store, StoreLifecycle } from '../ports.ts';

const exempt = new Set<PropertyKey>(['migrate', 'close'] satisfies Array<keyof StoreLifecycle>);

export function storeWithDeadlines<S extends Partial<Store>>(store: S, clock: Clock, ms: number): S {
  return new Proxy(store, {
    get(target, prop) {
      const f = target[prop as keyof S];
      if (typeof f !== 'function' || exempt.has(prop)) return f;
      return (...args: unknown[]) =>
        withDeadline(clock, (f as (...a: unknown[]) => Promise<unknown>).apply(target, args), ms, `PostgreSQL (${String(prop)})`).catch((err: unknown) => {
          if (err instanceof BatonError && err.code === 'timeout') throw new BatonError('database-unavailable', err.message, { call: String(prop) }, { cause: err });
          throw err;
        });
    },
  });
}
