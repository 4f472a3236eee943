/**
 * The inspector as a fastify plugin: its pages, its /events stream, /metrics and its operator routes
 * under /api/ on whatever fastify app registers it (its own, ./server.ts, or `baton serve`'s), with its
 * own checks (./requests.ts: the Host, the token, JSON-only POSTs). fastify parses no body here: the
 * operator routes read their own, with their own limit (MAX_BODY), as they always did.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { InspectorCore } from './requests.ts';

export interface InspectorPluginOptions {
  core: InspectorCore;
  /** the bound port when the server listens on loopback (the Host is checked against it), else null */
  loopbackPort(): number | null;
  /** the paths served: `all` (every path: the inspector's own server) or `pages` (its own paths only) */
  paths: 'all' | 'pages';
}

/** The inspector's paths when it shares a server: the page, the stream, the metrics and everything under /api/. */
export const INSPECTOR_PATHS = ['/', '/events', '/metrics', '/api/*'];

/**
 * fastify's `frameworkErrors` for a server the inspector serves whole: a URL fastify cannot decode (a
 * bad %XX escape) goes to the inspector, whose operator routes name the bad segment (400).
 */
export function inspectorFrameworkErrors(o: Pick<InspectorPluginOptions, 'core' | 'loopbackPort'>) {
  return (_err: Error, req: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }) => {
    reply.hijack();
    void o.core.handle(req.raw, reply.raw, o.loopbackPort());
  };
}

export const inspectorPlugin: FastifyPluginAsync<InspectorPluginOptions> = async (app: FastifyInstance, o) => {
  app.removeAllContentTypeParsers();
  // leaves the body unread for the operator routes, which read it themselves
  app.addContentTypeParser('*', (_req, _payload, done) => done(null));
  const handler = async (req: { raw: IncomingMessage }, reply: { hijack(): void; raw: ServerResponse }) => {
    reply.hijack();
    await o.core.handle(req.raw, reply.raw, o.loopbackPort());
  };
  for (const url of o.paths === 'all' ? ['/', '/*'] : INSPECTOR_PATHS) app.all(url, handler);
};
