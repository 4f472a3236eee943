/** The one error class of baton: a stable `code`, and a message that says what failed and what happens next. */

export type BatonErrorCode =
  | 'invalid-message'
  | 'invalid-config'
  | 'invalid-scenario'
  | 'scenario-step-failed'
  | 'broker-unavailable'
  | 'broker-rejected'
  | 'database-unavailable'
  | 'runtime-stopped'
  | 'runtime-not-started'
  | 'device-rejected'
  | 'device-unreachable'
  | 'lease-lost'
  | 'not-leader'
  | 'no-active-agent'
  | 'timeout'
  | 'unknown-device'
  | 'unknown-dead-letter'
  /** a message (device, seq) that was never accepted: `fate()` of a seq no `dispatch()` handed out */
  | 'unknown-message'
  | 'not-blocked'
  | 'no-standby-agent'
  /** an operator action's argument is wrong (a missing reason, a bad timeout): nothing was done */
  | 'invalid-request'
  /** a dead letter an operator already settled otherwise (retried, or resent): the action would send or hide it twice */
  | 'dead-letter-settled'
  | 'unsupported'
  // baton serve (API v1)
  /** a seq of a device that was never accepted */
  | 'unknown-message'
  /** an Idempotency-Key sent again with another request: nothing was done */
  | 'idempotency-key-reused'
  /** an Idempotency-Key whose first request is still being carried out: send again shortly */
  | 'idempotency-key-in-flight'
  /** no runtime leads right now (a standby answers; a leader is elected within about 1.3 × leaderTtl) */
  | 'no-leader'
  /** the server is stopping (SIGTERM): it settles what it accepted and takes nothing new */
  | 'stopping'
  /** a route whose part is not built yet */
  | 'not-built'
  /** the server serves as many of these (event streams) as it may: try again later */
  | 'busy'
  /** no such route */
  | 'not-found'
  /** no token, or a wrong one, where one is required (beyond loopback) */
  | 'unauthorized'
  /** a failure inside the server or the runtime that no other code names (see the log) */
  | 'internal';

/** An error with a stable, kebab-case `code` that callers can branch on. */
export class BatonError extends Error {
  override readonly name = 'BatonError';
  constructor(
    readonly code: BatonErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `err` is a BatonError, optionally of the given code. */
export function isBatonError(err: unknown, code?: BatonErrorCode): err is BatonError {
  return err instanceof BatonError && (code === undefined || err.code === code);
}

/** Query parameters whose values are credentials, by name (`password`, `sslpassword`, `access_token`, `api_key`, `X-Amz-Signature`, ...). */
const SECRET_PARAM = /pass|pwd|secret|token|key|auth|cred|sig|session/i;

/**
 * A URL fit for logs and error messages. The password is always replaced by `***`; the user name
 * too when no password follows it (then it is the credential, as in `https://<token>@host`), and is
 * kept otherwise (it names the account, which tells a wrong user from a wrong password). Query
 * parameters whose names look secret and any fragment are replaced by `***`.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    else if (u.username) u.username = '***';
    for (const name of new Set(u.searchParams.keys())) if (SECRET_PARAM.test(name)) u.searchParams.set(name, '***');
    if (u.hash) u.hash = '***';
    return u.toString();
  } catch {
    return '<unparseable url>';
  }
}

/** What every Store throws when a write only a leader may make comes from a leader term that is over. */
export function notInTerm(deviceId: string, term: { holder: string; epoch: number }): BatonError {
  return new BatonError(
    'not-leader',
    `runtime ${term.holder} no longer holds leader term ${term.epoch}: no seq reserved for device ${deviceId}; the message was not stored`,
    { deviceId, term },
  );
}

/** The same refusal for the other leader-only writes: `what` says what was not done and what happens next. */
export function termOver(what: string, term: { holder: string; epoch: number }): BatonError {
  return new BatonError('not-leader', `runtime ${term.holder} no longer holds leader term ${term.epoch}: ${what}`, { term });
}

/** The refusal of a publish its caller no longer wanted (see `Broker.publish`). */
/** The refusal of a queue move its caller no longer wanted (see `Broker.move`): the rest stays in the old queue. */
export function unwantedMove(from: string, why: string, moved: number): BatonError {
  return new BatonError('not-leader', `${why}: the move of queue ${from} stopped after ${moved} message(s); the rest stays in it, in order, for the leading runtime`, { from, moved });
}

export function unwantedPublish(messageId: string, why: string, maybeStored: boolean): BatonError {
  return new BatonError(
    'not-leader',
    maybeStored
      ? `${why}: message ${messageId} was not sent again after the broker connection dropped; it may have been stored before the drop`
      : `${why}: message ${messageId} was not sent (not stored): dispatch it again to the leading runtime`,
    { messageId, maybeStored, ...(maybeStored ? { outcome: 'unknown' } : {}) },
  );
}
