/**
 * A standby's answer to a request only the leader can carry out (the runtime refused it `not-leader`):
 * 307 Temporary Redirect to the same path on the leader's advertised URL, with the error body naming
 * the leader (`details.leader`); 503 `no-leader` with Retry-After: 1 when no leader is known.
 *
 * Why 307: it is the one redirect that keeps the method and the body (301 and 302 turn a POST into a
 * GET in most clients, 308 is cached as permanent while leadership moves). Clients that follow it
 * (curl -L, Go, requests, fetch) just work; those that do not follow a redirected POST (Python's
 * urllib) read `Location` or `details.leader` and send again, with the same Idempotency-Key.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BatonError } from '../errors.ts';
import { errorBody } from './error-answers.ts';
import type { LeaderLocator } from './runtime-ports.ts';

export async function redirectToLeader(err: BatonError, req: FastifyRequest, reply: FastifyReply, leader: LeaderLocator | undefined): Promise<FastifyReply> {
  const url = (await leader?.leaderUrl().catch(() => null)) ?? null;
  if (url === null) {
    const e = new BatonError('no-leader', `no runtime leads right now (${err.message}); nothing was done: send again in a second (a standby takes over within about 1.3 × leaderTtl)`, { cause: err.details });
    return reply.code(503).header('retry-after', '1').header('cache-control', 'no-store').send(errorBody(e));
  }
  const location = url.replace(/\/+$/, '') + req.url;
  const e = new BatonError('not-leader', `this baton serve stands by; the leader is ${url}: send the request there (same path, same Idempotency-Key)`, { leader: url });
  return reply.code(307).header('location', location).header('cache-control', 'no-store').send(errorBody(e));
}
