/**
 * Waiting for what the processes of a scenario report: a condition re-checked on each event, with a
 * deadline that fails naming what did not happen. No polling: every wait ends on an event.
 */
import type { EventEmitter } from 'node:events';
import { BatonError } from '../../errors.ts';

/**
 * Resolves true once `check()` holds (re-checked on each `event` of `emitter`), false when `signal`
 * aborts first; rejects with a `timeout` error after `ms`, saying `what` did not happen (a function
 * is asked at the deadline, so it can name what is still missing then).
 */
export function until(emitter: EventEmitter, event: string, check: () => boolean, ms: number, what: string | (() => string), signal?: AbortSignal): Promise<boolean> {
  if (check()) return Promise.resolve(true);
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve, reject) => {
    const done = (settle: () => void) => {
      clearTimeout(timer);
      emitter.off(event, onEvent);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onEvent = () => check() && done(() => resolve(true));
    const onAbort = () => done(() => resolve(false));
    const missed = () => new BatonError('timeout', `${typeof what === 'function' ? what() : what} within ${ms / 1000} s`, { waitedMs: ms });
    const timer = setTimeout(() => done(() => reject(missed())), ms);
    emitter.on(event, onEvent);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Like `until`, but the deadline is not a failure: resolves false when it passes (or `signal` aborts) first. */
export function untilOrDeadline(emitter: EventEmitter, event: string, check: () => boolean, ms: number, signal?: AbortSignal): Promise<boolean> {
  return until(emitter, event, check, ms, 'deadline', signal).catch(() => false);
}

/** Resolves true when `promise` settles within `ms`, false otherwise (the timer is cleared either way). */
export async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** A pause of `ms`: only for a host's pacing and retry backoff, never to wait for something to happen. */
export const pause = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
