/**
 * `startServer(runtime, opts)`: the serve app (./app.ts) listening, over HTTP or HTTPS (`tls`), on
 * loopback by default; bound anywhere else it requires tokens (refused at start, naming the option).
 * `close()` is the graceful stop: every new request is refused (503 `stopping`), the event streams
 * end, the requests in flight finish (each message accepted is answered: it is durable already), then
 * the server closes; requests still open after `graceMs` (a long `waitMs`) are cut. The runtime is the
 * caller's: `baton serve` stops it after (src/tools/cli/serve.ts).
 */
import type { AddressInfo } from 'node:net';
import type { Runtime } from '../api.ts';
import { systemClock } from '../clock.ts';
import { BatonError } from '../errors.ts';
import { checkTokens } from '../inspector/access.ts';
import { isLoopback } from '../inspector/loopback.ts';
import { createServeApp, type ServeApp, type ServeAppOptions } from './app.ts';
import { runtimePorts } from './runtime-ports.ts';

export interface ServerOptions extends Omit<ServeAppOptions, 'loopbackPort' | 'stopping'> {
  /** default 127.0.0.1; any other address needs `tokens` */
  host?: string;
  /** default 7443; 0 takes a free one */
  port?: number;
  /** this server's base URL as clients reach it (behind a proxy, or another name); default: the bound address */
  advertiseUrl?: string;
  /** how long close() lets requests in flight finish, ms (default 10 s) */
  graceMs?: number;
}

export interface BatonServer {
  /** the base URL it listens on (`http://127.0.0.1:7443/`) */
  url: string;
  /** the base URL clients are told (advertiseUrl, or `url`) */
  advertisedUrl: string;
  /** pass to the runtime's `inspect` option (the inspector's charts) */
  inspect: ServeApp['inspect'];
  app: ServeApp['app'];
  /** the graceful stop (see the header); the runtime keeps running */
  close(): Promise<void>;
}

export const DEFAULT_SERVE_PORT = 7443;

function checkServerOptions(o: ServerOptions): void {
  const port = o.port ?? DEFAULT_SERVE_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65535) throw new BatonError('invalid-config', `startServer: option "port" must be an integer 0..65535 (got ${JSON.stringify(o.port)})`);
  checkTokens({ tokens: o.tokens });
  if (!isLoopback(o.host ?? '127.0.0.1') && (o.tokens ?? []).length === 0) {
    throw new BatonError('invalid-config', `startServer: option "tokens" is required when the server binds ${o.host} (not loopback): give --tokens FILE or BATON_TOKENS (label:token per line)`);
  }
  if ((o.tls?.key === undefined) !== (o.tls?.cert === undefined)) throw new BatonError('invalid-config', 'startServer: option "tls" needs both key and cert');
  if (o.advertiseUrl !== undefined && !/^https?:\/\/[^/]+/.test(o.advertiseUrl)) {
    throw new BatonError('invalid-config', `startServer: option "advertiseUrl" must be an http(s) URL (got ${JSON.stringify(o.advertiseUrl)})`);
  }
}

/** Starts baton serve over `runtime` (started or not: requests before it runs are refused by the runtime). */
export async function startServer(runtime: Runtime, o: ServerOptions): Promise<BatonServer> {
  checkServerOptions(o);
  const clock = o.clock ?? systemClock;
  const host = o.host ?? '127.0.0.1';
  let loopbackPort: number | null = null;
  let stopping = false;
  const serve = await createServeApp(runtime, { ...o, ports: o.ports ?? runtimePorts(runtime), clock, loopbackPort: () => loopbackPort, stopping: () => stopping });
  await serve.app.listen({ host, port: o.port ?? DEFAULT_SERVE_PORT });
  const { port, address } = serve.app.server.address() as AddressInfo;
  if (isLoopback(address)) loopbackPort = port;
  const url = `${o.tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}/`;
  // a standby sends clients where the leader said it listens (the leader term carries it)
  runtime.advertise(o.advertiseUrl ?? url);
  serve.start();
  return {
    url,
    advertisedUrl: o.advertiseUrl ?? url,
    inspect: serve.inspect,
    app: serve.app,
    async close() {
      if (stopping) return;
      stopping = true;
      serve.stop();
      const cut = clock.setTimeout(() => serve.app.server.closeAllConnections(), o.graceMs ?? 10_000);
      try {
        await serve.app.close();
      } finally {
        cut.cancel();
      }
    },
  };
}
