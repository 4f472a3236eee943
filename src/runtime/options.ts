/**
 * `createRuntime`'s options, resolved once: the config (options over the environment, validated
 * and frozen by `resolveRuntimeConfig`), the clock, the runtime's id and logger, and what is
 * derived from the config (the keys, the queue names, the device set).
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { systemClock } from '../clock.ts';
import { fromEnv, resolveRuntimeConfig, type RuntimeConfig } from '../config.ts';
import { silentLogger } from '../logger.ts';
import type { Clock, DeviceConfig } from '../ports.ts';
import { topology } from '../topology.ts';
import { agentKey, streamKey } from '../trust.ts';

/** The options that make the config and the runtime's identity (the rest of `RuntimeOptions`, the
 * ports, the inspection and the phase hook, is the composition root's). */
export type ConfigOptions = Partial<Omit<RuntimeConfig, 'devices'>> & {
  /** device ids, or `{ id, fencesByEpoch }`: when every device refuses stale epochs a new agent may write at once */
  devices: ReadonlyArray<string | Pick<DeviceConfig, 'id' | 'fencesByEpoch'>>;
  logger?: Logger;
  clock?: Clock;
  /** this runtime's name in the leadership row (default host:pid:random) */
  runtimeId?: string;
};

/** What the parts of a runtime share, resolved from its options. */
export interface RuntimeSetup {
  cfg: RuntimeConfig;
  clock: Clock;
  runtimeId: string;
  log: Logger;
  /** K_a of an agent */
  keyOf(agentId: string): Buffer;
  /** K_s, the stream key */
  streamK: Buffer;
  queueOf(agentId: string): string;
  deviceSet: Set<string>;
  /** every device refuses stale epochs: a new agent may write at once */
  allFence: boolean;
}

export function resolveRuntimeOptions(options: ConfigOptions): RuntimeSetup {
  const { logger, clock: givenClock, runtimeId: givenId, ...rest } = options;
  // what the environment says for other commands (agents, baton devices, baton serve) is not the runtime's
  const { logLevel: _ignored, agentKey: _notOurs, agentKeyFile: _notOurs2, inspectorUrl: _client, inspectorToken: _client2, serveTokens: _server, secret: envSecret, secretFile: envSecretFile, ...envDefaults } = fromEnv();
  // a secret given as an option wins over the environment's (a secret and a secret file would clash)
  const envCredential = rest.secret !== undefined || rest.secretFile != null ? {} : { ...(envSecret ? { secret: envSecret } : {}), ...(envSecretFile ? { secretFile: envSecretFile } : {}) };
  const cfg = resolveRuntimeConfig({ ...envDefaults, ...envCredential, ...rest } as Record<string, unknown>);
  const runtimeId = givenId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`;
  return {
    cfg,
    clock: givenClock ?? systemClock,
    runtimeId,
    log: (logger ?? silentLogger()).child({ actor: 'runtime', runtimeId }),
    // every key comes from the deployment secret (src/trust.ts): K_a per agent, K_s for the stream
    keyOf: (agentId: string) => agentKey(cfg.secret, agentId),
    streamK: streamKey(cfg.secret),
    queueOf: topology(cfg.namespace).agentQueue,
    deviceSet: new Set(cfg.devices),
    allFence: options.devices.every((d) => typeof d === 'object' && d.fencesByEpoch === true),
  };
}
