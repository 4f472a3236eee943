/**
 * The inspector server: the live page, the machine definitions, an SSE stream fed from xstate's
 * `inspect` option, `/metrics`, and the runtime's devices and open alarms (`/api/devices`, `/api/alarms`). Loopback by default; bound elsewhere it requires a token.
 *
 * Bound to loopback, it answers only requests whose Host is `localhost` or a loopback address with
 * its port: a page of another site that rebinds its own name to 127.0.0.1 (DNS rebinding) sends its
 * own name as Host and is refused. `/events` takes at most `maxEventClients` clients, and drops one
 * whose unsent bytes pass EVENT_BUFFER_LIMIT (it does not read), so a client costs bounded memory
 * (./event-stream.ts); what it streams of the statecharts comes from ./actor-feed.ts.
 *
 * It is a fastify app carrying the inspector's plugin (./plugin.ts) over its requests (./requests.ts):
 * the same plugin `baton serve` mounts on its one server.
 */
import type { AddressInfo } from 'node:net';
import Fastify from 'fastify';
import type { InspectionEvent } from 'xstate';
import { isLoopback } from './loopback.ts';
import { checkInspectorOptions, type InspectorServerOptions } from './options.ts';
import { inspectorFrameworkErrors, inspectorPlugin } from './plugin.ts';
import { createInspectorCore } from './requests.ts';

export { checkInspectorOptions, isLoopback };
export type { InspectorOptions, InspectorServerOptions } from './options.ts';
export { EVENT_BUFFER_LIMIT } from './event-stream.ts';

export interface InspectorServer {
  /** pass to xstate's `inspect` option */
  inspect(e: InspectionEvent): void;
  start(): Promise<string>;
  stop(): Promise<void>;
  url(): string | null;
}

export function createInspectorServer(o: InspectorServerOptions): InspectorServer {
  checkInspectorOptions(o);
  const host = o.host ?? '127.0.0.1';
  const core = createInspectorCore(o);
  let address: string | null = null;
  /** set once listening on loopback: the port a request's Host must name */
  let loopbackPort: number | null = null;
  const mount = { core, loopbackPort: () => loopbackPort };
  const app = Fastify({ logger: false, routerOptions: { maxParamLength: 4096 }, frameworkErrors: inspectorFrameworkErrors(mount) });
  void app.register(inspectorPlugin, { ...mount, paths: 'all' });

  return {
    inspect: (e) => core.inspect(e),
    async start() {
      await app.listen({ port: o.port, host });
      const { port, address: bound } = app.server.address() as AddressInfo;
      if (isLoopback(bound)) loopbackPort = port;
      address = `http://${host.includes(':') ? `[${host}]` : host}:${port}/`;
      core.start();
      return address;
    },
    url: () => address,
    async stop() {
      core.stop();
      app.server.closeAllConnections();
      await app.close();
    },
  };
}
