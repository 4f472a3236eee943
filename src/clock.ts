/** The Clock port's real implementation: wall time for records, monotonic time for deadlines. */
import { BatonError } from './errors.ts';
import type { Clock } from './ports.ts';

/** The process clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(t) };
  },
};

/** Resolves after `ms` on the given clock (used for backoff, never to wait for an event). */
export function delay(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** `p`, or a `timeout` BatonError once `ms` passed on the clock; a later answer is ignored. */
export function withDeadline<T>(clock: Clock, p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = clock.setTimeout(() => reject(new BatonError('timeout', `${what} got no answer within ${ms} ms; it counts as failed`)), ms);
    p.then(
      (v) => (timer.cancel(), resolve(v)),
      (e: unknown) => (timer.cancel(), reject(e)),
    );
  });
}

/** Capped exponential backoff with jitter: attempt 1 waits about `initial`. */
export function backoff(attempt: number, initial: number, max: number, random = Math.random): number {
  const base = Math.min(max, initial * 2 ** Math.max(0, attempt - 1));
  return Math.round(base * (0.8 + 0.4 * random()));
}
