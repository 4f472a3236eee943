/**
 * Who may call API v1, and who the audit says asked: the inspector's rules (src/inspector/access.ts),
 * one auth story for the whole server. Bound to loopback, a request must name the server as its Host
 * (against DNS rebinding: 421); with tokens set (required beyond loopback), every request needs
 * `Authorization: Bearer <token>` (401 `unauthorized`), and the audit records `token:<label>`. While the
 * server stops, every new request is refused (503 `stopping`).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { BatonError } from '../errors.ts';
import { labelOf, requester, type InspectorToken } from '../inspector/access.ts';
import { loopbackHost } from '../inspector/loopback.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** who asks, as the audit records it (`token:<label>`, with the client's X-Baton-By) */
    by: string;
  }
}

export interface AccessOptions {
  tokens: InspectorToken[];
  /** the bound port when the server listens on loopback (its Host is checked), else null */
  loopbackPort(): number | null;
  /** true once the server stops: new requests are refused */
  stopping(): boolean;
}

/** The bearer token of a request (v1 takes it from the header only: a query string ends up in logs). */
const bearer = (req: FastifyRequest): string | null => /^Bearer[ ]+(\S+)[ ]*$/i.exec(req.headers.authorization ?? '')?.[1] ?? null;

/** fastify's onRequest hook for /v1: refuses (throws a BatonError the error handler answers) or names the caller. */
export function v1Access(o: AccessOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (o.stopping()) {
      void reply.header('retry-after', '1').header('connection', 'close');
      throw new BatonError('stopping', 'this server is stopping: it settles the messages it accepted and takes no new request; send it to another baton serve (or again once this one is back)');
    }
    const port = o.loopbackPort();
    if (port !== null && !loopbackHost(req.headers.host, port)) {
      throw new BatonError(
        'invalid-request',
        `this server listens on loopback and answers only Host localhost:${port}, 127.0.0.1:${port} or [::1]:${port} (got ${JSON.stringify(req.headers.host ?? null)}): another name is what a DNS-rebinding page sends`,
        { status: 421 },
      );
    }
    let label: string | null = null;
    if (o.tokens.length > 0) {
      label = labelOf(bearer(req), o.tokens);
      if (label === null) {
        void reply.header('www-authenticate', 'Bearer');
        throw new BatonError('unauthorized', 'a token is required: send Authorization: Bearer <token> (tokens come from baton serve --tokens FILE or BATON_TOKENS); nothing was done');
      }
    }
    const by = requester(req.raw, label);
    // the inspector's word for a caller on loopback who says nothing; here it is the API
    req.by = by === 'inspector' && label === null ? 'serve' : by;
  };
}
