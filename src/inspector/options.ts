/** The inspector's options, and their check at configuration time (a token beyond loopback). */
import type { Logger } from 'pino';
import { BatonError } from '../errors.ts';
import { checkTokens, tokenList, type InspectorToken } from './access.ts';
import type { OperatorApi } from './action-routes.ts';
import { isLoopback } from './loopback.ts';
import type { Clock } from '../ports.ts';
import type { Alarm, DeviceView, RuntimeStatus } from '../api.ts';

export interface InspectorOptions {
  port: number;
  /** default 127.0.0.1; any other address needs `token` (or `tokens`) */
  host?: string;
  /** the one token (the audit names its holder `token:token`) */
  token?: string;
  /** several tokens, each with the label the audit names its holder by (`token:<label>`) */
  tokens?: InspectorToken[];
  /** `/events` clients at once, at most (default 16); the next one is answered 503 */
  maxEventClients?: number;
}

/** Fails at configuration time, naming the option, when the inspector would be exposed without a token. */
export function checkInspectorOptions(o: InspectorOptions): void {
  if (!Number.isSafeInteger(o.port) || o.port < 0 || o.port > 65535) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.port" must be an integer 0..65535 (got ${JSON.stringify(o.port)})`);
  }
  if (o.maxEventClients !== undefined && (!Number.isSafeInteger(o.maxEventClients) || o.maxEventClients < 1)) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.maxEventClients" must be an integer >= 1 (got ${JSON.stringify(o.maxEventClients)})`);
  }
  checkTokens(o);
  if (!isLoopback(o.host ?? '127.0.0.1') && tokenList(o).length === 0) {
    throw new BatonError('invalid-config', `createRuntime: option "inspector.token" is required when the inspector binds ${o.host} (not loopback)`);
  }
}

export type InspectorServerOptions = InspectorOptions & {
  status(): Promise<RuntimeStatus>;
  /** `/api/devices`: the runtime's per-device view (absent: the page answers 404) */
  devices?(): Promise<DeviceView[]>;
  /** the runtime's operator actions, served under /api/ (./action-routes.ts); absent: none is served */
  actions?(): OperatorApi;
  /** `/api/alarms`: the runtime's open alarms (absent: the page answers 404) */
  alarms?(): Alarm[];
  /** the Prometheus text of /metrics and its content type */
  metrics: { text(): Promise<string>; readonly contentType: string };
  logger: Logger;
  /** times the status pushed to `/events` each second (default: the process clock) */
  clock?: Clock;
};

