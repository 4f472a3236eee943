/**
 * Safe retries: an `Idempotency-Key` maps to the first answer of its request, durably (the store's
 * IdempotencyStore role), for a stated window (default 24 h; expired keys count as unused and are
 * purged every `purgeEveryMs`). The request is named by a hash of its route and its body (canonical
 * JSON: key order does not count); the same key with another request is refused (422
 * `idempotency-key-reused`, naming the key), whatever became of the first.
 *
 * The sequence: claim the key (one atomic insert in the store), carry the request out, record its
 * answer. What can go wrong in between:
 * - Two requests with one key at once, on one server: the second finds the first in this process's
 *   table of requests in flight (filled before any await) and waits for its answer, then replays it.
 *   On two servers (only across a change of leader: only the leader accepts messages) the store's
 *   claim lets one win; the other answers 409 `idempotency-key-in-flight` with `Retry-After: 1`.
 * - The request fails (a refusal, the broker down): nothing was accepted, so the claim is released
 *   and a retry with the same key is carried out afresh.
 * - The server dies after the runtime published the message and before the recording of the answer:
 *   the claim stays with no answer. A retry within `claimTimeoutMs` (default 30 s, longer than a
 *   dispatch takes) answers 409 `idempotency-key-in-flight`; after it, the retry takes the claim over
 *   and dispatches again: a second message (the first is delivered if it reached RabbitMQ). That window
 *   runs from the publish to the recording (the broker's confirm and one database write); closing it
 *   would need the key stored in the same transaction as the message (RabbitMQ has none with
 *   PostgreSQL). A recording that fails (the database down) leaves the same state, and is logged.
 */
import { createHash } from 'node:crypto';
import { BatonError } from '../errors.ts';
import type { Clock, IdempotencyStore } from '../ports.ts';

/** An answer as it is stored and replayed: the status and the JSON body as sent. */
export interface StoredAnswer {
  status: number;
  body: string;
}

export interface IdempotencyOptions {
  store: IdempotencyStore;
  clock: Clock;
  /** how long a key keeps its answer, ms (default 24 h) */
  windowMs?: number;
  /** how long a claim with no answer counts as in flight before a retry takes it over, ms (default 30 s) */
  claimTimeoutMs?: number;
  /** how often expired keys are deleted, ms (default 10 min) */
  purgeEveryMs?: number;
  log: { warn(o: object, msg: string): void; error(o: object, msg: string): void };
}

export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 24 * 3600_000;

/** JSON with every object's keys sorted: one text per value, whatever the client's key order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o).sort().filter((k) => o[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

export const requestHash = (route: string, body: unknown) => createHash('sha256').update(route).update('\n').update(canonicalJson(body)).digest('hex');

export class Idempotency {
  private readonly inFlight = new Map<string, { hash: string; answer: Promise<StoredAnswer> }>();
  private readonly windowMs: number;
  private readonly claimTimeoutMs: number;
  private purgeTimer: { cancel(): void } | null = null;

  constructor(private readonly o: IdempotencyOptions) {
    this.windowMs = o.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
    this.claimTimeoutMs = o.claimTimeoutMs ?? 30_000;
  }

  /**
   * Carries `work` out once per key: its answer, or the first answer of that key (`replayed`). `work`
   * resolves with the answer to keep (a 2xx); when it throws, the key is released and the error thrown.
   */
  async run(key: string | undefined, route: string, body: unknown, work: () => Promise<StoredAnswer>): Promise<StoredAnswer & { replayed: boolean }> {
    if (key === undefined) return { ...(await work()), replayed: false };
    const hash = requestHash(route, body);
    const here = this.inFlight.get(key);
    if (here) {
      if (here.hash !== hash) throw reused(key);
      try {
        return { ...(await here.answer), replayed: true };
      } catch {
        // the first failed and did nothing: this one is carried out afresh
        if (this.inFlight.get(key) === here) this.inFlight.delete(key);
        return this.run(key, route, body, work);
      }
    }
    const answer = this.claimAndRun(key, hash, work);
    const entry = { hash, answer: answer.then((a) => a.answer) };
    entry.answer.catch(() => {}); // awaited only by a second request with the key, if one comes
    this.inFlight.set(key, entry);
    try {
      const r = await answer;
      return { ...r.answer, replayed: r.replayed };
    } finally {
      if (this.inFlight.get(key) === entry) this.inFlight.delete(key);
    }
  }

  private async claimAndRun(key: string, hash: string, work: () => Promise<StoredAnswer>): Promise<{ answer: StoredAnswer; replayed: boolean }> {
    const { store, clock } = this.o;
    const at = clock.now();
    const had = await store.claimIdempotencyKey({ key, hash, at, expiresAt: at + this.windowMs });
    if (had) {
      if (had.hash !== hash) throw reused(key);
      if (had.answer) return { answer: had.answer, replayed: true };
      const retaken = await store.retakeIdempotencyKey({ key, hash, at, expiresAt: at + this.windowMs, staleBefore: at - this.claimTimeoutMs });
      if (!retaken) throw inFlight(key, had.claimedAt, at);
      this.o.log.warn({ key, claimedAt: had.claimedAt }, 'idempotency key claimed by a request that never answered (its server died?): carrying the retry out');
    }
    let answer: StoredAnswer;
    try {
      answer = await work();
    } catch (err) {
      await store.releaseIdempotencyKey(key, at).catch((e: Error) => this.o.log.warn({ key, err: e.message }, 'idempotency key not released'));
      throw err;
    }
    const kept = await store.completeIdempotencyKey(key, at, answer).catch((e: Error) => {
      this.o.log.error({ key, err: e.message }, 'the answer of an idempotency key was not recorded: a retry after the claim timeout is carried out again');
      return true;
    });
    if (!kept) this.o.log.warn({ key }, 'idempotency key taken over by another request while this one ran');
    return { answer, replayed: false };
  }

  /** Deletes the expired keys now and every `purgeEveryMs`. */
  start(): void {
    const every = this.o.purgeEveryMs ?? 600_000;
    const purge = () => {
      this.o.store.purgeIdempotencyKeys(this.o.clock.now()).catch((e: Error) => this.o.log.warn({ err: e.message }, 'expired idempotency keys not purged (next try later)'));
      this.purgeTimer = this.o.clock.setTimeout(purge, every);
    };
    purge();
  }

  stop(): void {
    this.purgeTimer?.cancel();
    this.purgeTimer = null;
  }
}

const reused = (key: string) =>
  new BatonError('idempotency-key-reused', `Idempotency-Key ${JSON.stringify(key)} was used for another request (another route or body); nothing was done: use a new key for a new request`, { key });

const inFlight = (key: string, claimedAt: number, now: number) =>
  new BatonError('idempotency-key-in-flight', `the request with Idempotency-Key ${JSON.stringify(key)} is still being carried out (since ${now - claimedAt} ms); send it again shortly, with the same key`, { key, retryAfterS: 1 });
