/**
 * The inspector's `/events` stream (Server-Sent Events): its clients, at most `maxClients` at once;
 * what every client gets (snapshots and events as they come, the runtime's status each second); and
 * the drop of a client whose unsent bytes pass EVENT_BUFFER_LIMIT (it does not read), so a client costs
 * bounded memory.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RuntimeStatus } from '../api.ts';
import type { Clock } from '../ports.ts';

/** Bytes an `/events` client may leave unread in the server (beyond what the sockets hold) before it is dropped. */
export const EVENT_BUFFER_LIMIT = 1024 * 1024;

export interface EventStreamOptions {
  maxClients: number;
  status(): Promise<RuntimeStatus>;
  logger: Logger;
  /** times the status pushed each second */
  clock: Clock;
}

export interface EventStream {
  /** one event to every client */
  broadcast(kind: string, data: unknown): void;
  /** answers a request for `/events`: 503 when full, else the stream, opened with `first` as snapshots */
  open(req: IncomingMessage, res: ServerResponse, first: Iterable<unknown>): void;
  /** pushes the status to every client each second, from now on */
  start(): void;
  /** stops the pushes and ends every client's stream */
  stop(): void;
}

export function createEventStream(o: EventStreamOptions): EventStream {
  const clients = new Set<ServerResponse>();
  let statusTimer: { cancel(): void } | null = null;
  const statusFailed = (err: unknown) => o.logger.debug({ err: (err as Error).message }, 'inspector status failed');

  /** Writes one event, or drops the client when what it left unread passed the limit. */
  const send = (res: ServerResponse, kind: string, data: unknown) => {
    if (res.destroyed) return;
    if (res.writableLength > EVENT_BUFFER_LIMIT) {
      clients.delete(res);
      o.logger.warn({ buffered: res.writableLength, limit: EVENT_BUFFER_LIMIT }, 'inspector dropped an /events client that does not read');
      res.destroy();
      return;
    }
    res.write(`event: ${kind}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = (kind: string, data: unknown) => {
    for (const c of clients) send(c, kind, data);
  };

  async function pushStatus(): Promise<void> {
    if (clients.size === 0) return;
    try {
      broadcast('status', await o.status());
    } catch (err) {
      statusFailed(err);
    }
  }
  const everySecond = () => {
    statusTimer = o.clock.setTimeout(() => {
      void pushStatus();
      everySecond();
    }, 1000);
  };

  function open(req: IncomingMessage, res: ServerResponse, first: Iterable<unknown>): void {
    if (clients.size >= o.maxClients) {
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
      return void res.end(`${o.maxClients} /events clients are connected, the most this inspector serves: close one, or raise inspector.maxEventClients\n`);
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(': baton\n\n');
    for (const s of first) send(res, 'snapshot', s);
    clients.add(res);
    req.on('close', () => clients.delete(res));
    // the newcomer's first status goes to it alone; the others get theirs each second
    o.status().then((s) => clients.has(res) && send(res, 'status', s), statusFailed);
  }

  return {
    broadcast,
    open,
    start: everySecond,
    stop() {
      statusTimer?.cancel();
      for (const c of clients) c.end();
      clients.clear();
    },
  };
}
