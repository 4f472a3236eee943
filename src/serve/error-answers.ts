/**
 * The one error shape of API v1, `{ error: { code, message, details } }`, and the HTTP status of each
 * BatonError code. fastify's own errors (schema validation, body too large, a body that is not JSON, an
 * unsupported content type, an unknown route) are answered in the same shape; a `not-leader` refusal
 * becomes the standby's redirect (./leader-redirect.ts).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BatonError, isBatonError, type BatonErrorCode } from '../errors.ts';
import { httpStatusOf as inspectorStatusOf } from '../inspector/action-routes.ts';

const STATUS: Partial<Record<BatonErrorCode, number>> = {
  'unknown-message': 404,
  'not-found': 404,
  unauthorized: 401,
  busy: 503,
  'idempotency-key-reused': 422,
  'idempotency-key-in-flight': 409,
  'no-leader': 503,
  stopping: 503,
  'not-built': 501,
  internal: 500,
};

/** The HTTP status a BatonError answers with. */
export const statusOf = (code: BatonErrorCode): number => STATUS[code] ?? inspectorStatusOf(code);

export interface ErrorAnswer {
  error: { code: string; message: string; details: Record<string, unknown> };
}

export const errorBody = (err: BatonError): ErrorAnswer => ({ error: { code: err.code, message: err.message, details: err.details } });

/** fastify's error codes, as the BatonError they mean for a client. */
function fromFastify(err: FastifyError): BatonError | null {
  if (err.validation) {
    const first = err.validation[0];
    const where = err.validationContext ?? 'request';
    const field = `${where}${first?.instancePath ? first.instancePath.replace(/\//g, '.') : ''}`;
    return new BatonError('invalid-request', `${field} ${first?.message ?? 'is not valid'}; nothing was done`, { field, problems: err.validation.map((v) => `${where}${v.instancePath} ${v.message}`) });
  }
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BatonError('invalid-request', `the request body is over the server's limit (${err.message}); nothing was done: send smaller batches`, { status: 413 });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new BatonError('invalid-request', 'send JSON with Content-Type: application/json; nothing was done', { status: 415 });
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new BatonError('invalid-request', `the request body is not JSON (${err.message}); nothing was done`);
  }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return new BatonError('invalid-request', `${err.message}; nothing was done`, { status: err.statusCode });
  return null;
}

/** Answers `err` in the one shape; `log` hears what no code names. */
export function answerError(err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  let e: BatonError;
  if (isBatonError(err)) e = err;
  else {
    const mapped = fromFastify(err as FastifyError);
    if (mapped) e = mapped;
    else {
      req.log.error({ err: (err as Error)?.message, url: req.url }, 'request failed inside the server');
      e = new BatonError('internal', `the request failed inside the server (${(err as Error)?.message ?? String(err)}); see the server's log`);
    }
  }
  const status = typeof e.details.status === 'number' && e.code === 'invalid-request' ? e.details.status : statusOf(e.code);
  if (typeof e.details.retryAfterS === 'number') void reply.header('retry-after', String(e.details.retryAfterS));
  return reply.code(status).header('cache-control', 'no-store').send(errorBody(e));
}
