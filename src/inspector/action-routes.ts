/**
 * The inspector's operator API: the runtime's actions over HTTP, JSON in and out.
 *
 *   POST /api/devices/:device/pause | resume        POST /api/devices/:device/unblock {"action":"retry"|"skip"}
 *   POST /api/dead-letters/:id/resend               POST /api/dead-letters/:id/drop {"reason":"..."}
 *   POST /api/handover {"to"?: agent}               POST /api/wait {"deviceId"?, "timeoutMs"?} (answers once drained)
 *   GET  /api/dead-letters[?device=&reason=&open=&limit=]   GET /api/dead-letters/:id   GET /api/audit[?limit=]
 *
 * A POST must say `Content-Type: application/json`: a cross-site HTML form cannot send that, and a
 * cross-site script that does is stopped by the browser's preflight (no OPTIONS is served), so no
 * web page can drive an inspector on loopback. The token, when one is set, was checked before.
 * Errors answer `{ error: { code, message } }`, with an HTTP status chosen by the code.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Runtime } from '../api.ts';
import { BatonError, isBatonError, type BatonErrorCode } from '../errors.ts';

/** What the inspector is given of the runtime to act with. */
export type OperatorApi = Pick<Runtime, 'pause' | 'resume' | 'unblock' | 'deadLetters' | 'deadLetter' | 'resendDeadLetter' | 'dropDeadLetter' | 'handover' | 'drained' | 'audit'>;

/** The largest POST body read, in bytes. */
export const MAX_BODY = 16 * 1024;

const STATUS: Partial<Record<BatonErrorCode, number>> = {
  'invalid-request': 400, 'invalid-message': 400, 'invalid-config': 400,
  'unknown-device': 404, 'unknown-dead-letter': 404,
  'not-blocked': 409, 'dead-letter-settled': 409, 'no-standby-agent': 409,
  'not-leader': 503, 'runtime-not-started': 503, 'runtime-stopped': 503, 'database-unavailable': 503, 'broker-unavailable': 503, 'no-active-agent': 503,
  timeout: 504,
  unsupported: 501,
};

/** The HTTP status a BatonError answers with. */
export const httpStatusOf = (code: BatonErrorCode): number => STATUS[code] ?? 500;

type Body = Record<string, unknown>;
interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  /** the body's fields this route reads (any other is refused: a misspelt `reason` must not pass unseen) */
  fields?: string[];
  run(api: OperatorApi, m: string[], ctx: { body: Body; query: URLSearchParams; by: string }): Promise<unknown>;
}

const bad = (what: string) => new BatonError('invalid-request', `${what}; nothing was done`);
const str = (v: unknown, field: string): string | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw bad(`"${field}" must be a string`);
  return v;
};
const int = (v: string | null | unknown, field: string): number | undefined => {
  if (v === null || v === undefined) return undefined;
  const n = typeof v === 'number' ? v : Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw bad(`"${field}" must be a whole number >= 1 (got ${JSON.stringify(v)})`);
  return n;
};
const idOf = (s: string) => int(s, 'id')!;
const decoded = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    throw bad(`the path segment ${JSON.stringify(s)} has a bad %XX escape`);
  }
};

const ROUTES: Route[] = [
  { method: 'POST', path: /^\/api\/devices\/([^/]+)\/pause$/, run: (api, [d], { by }) => api.pause(d!, { by }) },
  { method: 'POST', path: /^\/api\/devices\/([^/]+)\/resume$/, run: (api, [d], { by }) => api.resume(d!, { by }) },
  {
    method: 'POST', path: /^\/api\/devices\/([^/]+)\/unblock$/, fields: ['action'],
    run: (api, [d], { body, by }) => {
      if (body.action !== 'retry' && body.action !== 'skip') throw bad(`"action" must be "retry" (send the refused message again) or "skip" (leave it dead-lettered and go on); got ${JSON.stringify(body.action ?? null)}`);
      return api.unblock(d!, { action: body.action, by });
    },
  },
  { method: 'POST', path: /^\/api\/dead-letters\/(\d+)\/resend$/, run: (api, [id], { by }) => api.resendDeadLetter(idOf(id!), { by }) },
  { method: 'POST', path: /^\/api\/dead-letters\/(\d+)\/drop$/, fields: ['reason'], run: (api, [id], { body, by }) => api.dropDeadLetter(idOf(id!), { reason: str(body.reason, 'reason') ?? '', by }) },
  {
    method: 'POST', path: /^\/api\/handover$/, fields: ['to'],
    run: (api, _, { body, by }) => {
      const to = str(body.to, 'to');
      return api.handover({ ...(to ? { to } : {}), by });
    },
  },
  {
    method: 'POST', path: /^\/api\/wait$/, fields: ['deviceId', 'timeoutMs'],
    run: async (api, _, { body }) => {
      const deviceId = str(body.deviceId, 'deviceId');
      const timeoutMs = int(body.timeoutMs, 'timeoutMs');
      await api.drained({ ...(deviceId !== undefined ? { deviceId } : {}), ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
      return { drained: true, deviceId: deviceId ?? null };
    },
  },
  {
    method: 'GET', path: /^\/api\/dead-letters$/,
    run: (api, _, { query }) => {
      const open = query.get('open');
      if (open !== null && !['', 'true', 'false', '1', '0'].includes(open)) throw bad(`"open" must be true or false (got ${JSON.stringify(open)})`);
      const limit = int(query.get('limit'), 'limit');
      return api.deadLetters({
        ...(query.get('device') ? { deviceId: query.get('device')! } : {}),
        ...(query.get('reason') ? { reason: query.get('reason')! } : {}),
        ...(open !== null ? { open: open === '' || open === 'true' || open === '1' } : {}),
        ...(limit !== undefined ? { limit } : {}),
      });
    },
  },
  {
    method: 'GET', path: /^\/api\/dead-letters\/(\d+)$/,
    run: async (api, [id]) => {
      const dl = await api.deadLetter(idOf(id!));
      if (!dl) throw new BatonError('unknown-dead-letter', `there is no dead letter ${id} (GET /api/dead-letters lists them)`);
      return dl;
    },
  },
  { method: 'GET', path: /^\/api\/audit$/, run: (api, _, { query }) => { const limit = int(query.get('limit'), 'limit'); return api.audit(limit !== undefined ? { limit } : {}); } },
];

function answer(res: ServerResponse, status: number, v: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(v));
}

/** Answers an error as `{ error: { code, message } }`. */
export function answerError(res: ServerResponse, status: number, code: string, message: string): void {
  answer(res, status, { error: { code, message } });
}

/** The JSON object a POST carries (an empty body is `{}`), read up to MAX_BODY bytes. */
async function readBody(req: IncomingMessage): Promise<Body> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > MAX_BODY) throw bad(`the request body is over ${MAX_BODY} bytes`);
    chunks.push(c);
  }
  const text = Buffer.concat(chunks).toString('utf8').trim();
  if (text === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad('the request body is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('the request body must be a JSON object');
  return v as Body;
}

/** Whether a request's Content-Type is JSON (`application/json`, parameters allowed). */
export const isJson = (req: IncomingMessage) => /^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '');

/**
 * Serves an operator route: true when `url` is one (answered, with an error if need be), false
 * when it is none of them (the caller serves its pages). `by` is who asks (access.ts).
 */
export async function serveAction(req: IncomingMessage, res: ServerResponse, url: URL, by: string, api: OperatorApi, log: { warn(o: object, msg: string): void }): Promise<boolean> {
  const matches = ROUTES.map((r) => ({ r, m: r.path.exec(url.pathname) })).filter((x) => x.m);
  if (matches.length === 0) return false;
  const hit = matches.find((x) => x.r.method === req.method);
  if (!hit) {
    res.setHeader('allow', [...new Set(matches.map((x) => x.r.method))].join(', '));
    answerError(res, 405, 'invalid-request', `${url.pathname} takes ${matches.map((x) => x.r.method).join(' or ')}, not ${req.method}`);
    return true;
  }
  try {
    let body: Body = {};
    if (req.method === 'POST') {
      if (!isJson(req)) return (answerError(res, 415, 'invalid-request', 'an action must be sent with Content-Type: application/json (what a browser form cannot send); nothing was done'), true);
      body = await readBody(req);
      const unknown = Object.keys(body).filter((k) => !(hit.r.fields ?? []).includes(k));
      if (unknown.length) throw bad(`unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(', ')} (this action takes ${hit.r.fields?.length ? hit.r.fields.join(', ') : 'none'})`);
    }
    const params = hit.m!.slice(1).map(decoded);
    answer(res, 200, await hit.r.run(api, params, { body, query: url.searchParams, by }));
  } catch (err) {
    if (isBatonError(err)) answerError(res, httpStatusOf(err.code), err.code, err.message);
    else {
      log.warn({ err: (err as Error).message, path: url.pathname }, 'inspector action failed');
      answerError(res, 500, 'internal', `the action failed inside the runtime (${(err as Error).message}); see the runtime's log`);
    }
  }
  return true;
}
