/**
 * GET /v1/events: the runtime's event journal as Server-Sent Events (`applied`, `dead-lettered`,
 * `switch`, `alarm`), each with its journal id as the SSE `id:`, so a client that reconnects with
 * `Last-Event-ID` resumes right after the last event it got. At most `maxClients` at once (503 past
 * that); a client that leaves more than EVENT_BUFFER_LIMIT bytes unread is dropped (it reconnects and
 * resumes), so a client costs bounded memory; a comment line every 15 s keeps proxies from timing out.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { BatonError } from '../errors.ts';
import { EVENT_BUFFER_LIMIT } from '../inspector/event-stream.ts';
import type { Clock } from '../ports.ts';
import type { EventJournal } from './runtime-ports.ts';
import * as S from './schemas.ts';

export interface EventRoutesOptions {
  journal: EventJournal | undefined;
  clock: Clock;
  maxClients: number;
  log: { warn(o: object, msg: string): void };
}

const KEEPALIVE_MS = 15_000;

/** The route, over the set of open streams (the server ends them when it stops). */
export function eventRoutes(clients: Set<ServerResponse>): FastifyPluginAsyncTypebox<EventRoutesOptions> {
  return async (app, o) => {
    app.get('/v1/events', {
      schema: {
        summary: 'the event journal as Server-Sent Events; Last-Event-ID resumes after that id',
        tags: ['events'],
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}-[0-9]{1,15}$', description: 'the id of the last event received (<leader term>-<n>)' })) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...S.errors(400, 401, 501, 503) },
      },
    }, async (req, reply) => {
      if (!o.journal) throw new BatonError('not-built', 'the event stream needs the runtime\'s event journal (not in this build); poll GET /v1/status and GET /v1/alarms instead');
      if (clients.size >= o.maxClients) {
        throw new BatonError('busy', `${o.maxClients} /v1/events clients are connected, the most this server serves: close one, or try again later`, { retryAfterS: 5 });
      }
      const last = req.headers['last-event-id'];
      const res = reply.raw;
      let unfollow: (() => void) | null = null;
      let keepalive: { cancel(): void } | null = null;
      const close = () => {
        clients.delete(res);
        unfollow?.();
        keepalive?.cancel();
      };
      // throws `invalid-request` when the journal no longer holds what followed `last`: answered before the stream opens
      const follow = (listener: (line: string) => void) => o.journal!.follow(last === undefined ? null : String(last), (e) => listener(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`));
      const pending: string[] = [];
      let open = false;
      const write = (line: string) => {
        if (!open) return void pending.push(line);
        if (res.destroyed) return close();
        if (res.writableLength > EVENT_BUFFER_LIMIT) {
          o.log.warn({ buffered: res.writableLength }, 'dropped a /v1/events client that does not read (it may reconnect with Last-Event-ID)');
          close();
          return void res.destroy();
        }
        res.write(line);
      };
      unfollow = follow(write);
      reply.hijack();
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write(': baton v1 events\n\n');
      open = true;
      for (const line of pending.splice(0)) write(line);
      clients.add(res);
      const beat = () => {
        keepalive = o.clock.setTimeout(() => {
          write(': keepalive\n\n');
          beat();
        }, KEEPALIVE_MS);
      };
      beat();
      res.on('close', close);
      if (res.destroyed) close();
    });
  };
}
