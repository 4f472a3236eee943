/**
 * The agent process's composition root: the one place in the agent that builds adapters (the amqp
 * broker, the http device client) and assembles its parts. The agent consumes its own durable
 * queue (consumer.ts, its modes in queue-hold.ts), pushes each message to its device through the
 * device lanes (FIFO per device, devices in parallel), heartbeats (heartbeat.ts), takes lease
 * grants (grants.ts, lease.ts; each grant taken hands its watermarks and the runtime's line orders
 * to the lanes), reports receipts (receipts.ts: exactly the seqs it applied, as ranges, in
 * batches; dead letters one by one and confirmed before the message is acked), and gives its lease
 * back when the runtime asks (release.ts: a planned handover).
 *
 * Trust: it holds its credential only (its own key and the stream key, src/trust.ts). It seals
 * its heartbeats and receipts with its key, takes a grant only when sealed with its key for this
 * process and one of its own heartbeats, and dead-letters unread a queued message without the
 * runtime's valid mac (reason `unauthenticated`).
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { createAmqpBroker } from '../adapters/amqp/broker.ts';
import { createHttpDeviceClient } from '../adapters/http-device-client.ts';
import { systemClock } from '../clock.ts';
import { resolveAgentConfig, type AgentConfig } from '../config.ts';
import { silentLogger } from '../logger.ts';
import type { Broker, Clock, DeviceClient } from '../ports.ts';
import { agentConnectionName } from '../topology.ts';
import { messageProblem, parseAgentCredential, type AgentCredential } from '../trust.ts';
import { QueueConsumer } from './consumer.ts';
import { DeviceLanes } from './device-lanes.ts';
import { listenForGrants } from './grants.ts';
import { startHeartbeat } from './heartbeat.ts';
import { Lease } from './lease.ts';
import { createReceipts } from './receipts.ts';
import { handOverFirst, ReleaseListener } from './release.ts';

/** how long a stopping active agent waits for the runtime to ask for its lease back (`leave`), ms */
export const LEAVE_WAIT_MS = 5000;

export interface AgentPorts {
  broker?: Broker;
  deviceClient?: DeviceClient;
  clock?: Clock;
  logger?: Logger;
  /** jitter source (seeded in the simulation) */
  random?: () => number;
  /** the agent process's identity for its leases (random by default) */
  incarnation?: string;
}

export interface AgentHandle {
  readonly id: string;
  readonly queue: string;
  /** `applied`, `retry`, `dead-letter`, `anomaly`, `blocked`, `unblocked`, `skipped`, `fenced`, `releasing` and `released` {why}, `lease` {epoch, lines} (a grant taken, with the line orders now in force), `lease-returned` {epoch} */
  readonly events: EventEmitter;
  lanes(): ReturnType<DeviceLanes['snapshot']>;
  stop(): Promise<void>;
  /**
   * Stops as SIGTERM should: an agent that holds the lease (the active one) asks the runtime for a
   * planned handover (its heartbeats say `leaving`) and stops once it gave its lease back
   * (`handed-over`); when no release request comes within `waitMs` (no other agent can take over),
   * it stops as `stop()` does (`no-handover`: the stream fails over later). An agent without a
   * lease stops at once (`not-active`).
   */
  leave(opts?: { waitMs?: number }): Promise<'handed-over' | 'no-handover' | 'not-active'>;
}

/** Starts an agent in this process. Options as in `AgentConfig`; `id` and `devices` are required. */
export async function startAgent(options: Partial<AgentConfig> & { id: string; devices: AgentConfig['devices'] }, ports: AgentPorts = {}): Promise<AgentHandle> {
  const cfg = resolveAgentConfig(options as unknown as Record<string, unknown>);
  // resolveAgentConfig checked it: a credential, of this agent
  const cred = parseAgentCredential(cfg.key) as AgentCredential;
  const clock = ports.clock ?? systemClock;
  const log = (ports.logger ?? silentLogger()).child({ actor: 'agent', agentId: cfg.id });
  const broker = ports.broker ?? amqpBroker(cfg, clock, log);
  const client = ports.deviceClient ?? createHttpDeviceClient({ timeoutMs: cfg.requestTimeoutMs });
  const devices = new Map(cfg.devices.map((d) => [d.id, d]));
  const events = new EventEmitter();
  const lease = new Lease(clock, ports.incarnation ?? randomUUID());
  const receipts = createReceipts({ agentId: cfg.id, agentKey: cred.agentKey, broker, clock, log, lease, flushMs: cfg.receiptFlushMs });
  const lanes = new DeviceLanes({
    agentId: cfg.id,
    devices,
    client,
    clock,
    logger: log,
    onPermanent: cfg.onPermanent,
    retryInitialMs: cfg.retryInitialMs,
    retryMaxMs: cfg.retryMaxMs,
    ...(ports.random ? { random: ports.random } : {}),
    lease,
    authenticate: (m) => messageProblem(cred.streamKey, m),
    applied: (deviceId, seq, retry) => receipts.applied(deviceId, seq, retry),
    deadLetter: (entry, kind, retry) => receipts.deadLetter(entry, kind, retry),
    fenced: (deviceId, outcome) => {
      log.error({ deviceId, epoch: lease.epoch, reason: 'reason' in outcome ? outcome.reason : '' }, 'device says this agent is fenced (a newer epoch wrote): it stops delivering and gives its messages back');
      lease.revoke();
      events.emit('fenced', { deviceId });
      consumer.giveBack('fenced by a device');
    },
  });
  for (const name of ['applied', 'retry', 'dead-letter', 'anomaly', 'blocked', 'unblocked', 'skipped']) lanes.on(name, (e) => events.emit(name, e));

  await broker.start();
  const queue = await broker.assertAgentQueue(cfg.id);
  const consumer = new QueueConsumer({ broker, queue, prefetch: cfg.prefetch, lanes, receipts, lease, log, events });
  await consumer.start();
  await listenForGrants({
    agentId: cfg.id,
    agentKey: cred.agentKey,
    broker,
    clock,
    log,
    lease,
    granted: (g) => {
      for (const [deviceId, seq] of Object.entries(g.watermarks)) lanes.setWatermark(deviceId, seq, g.epoch);
      // the newest grant's orders stand (none: no line is ordered); a lane a refusal blocked stays blocked until one frees it
      lanes.setOrders(g.lines ?? {});
      consumer.granted();
      events.emit('lease', { epoch: g.epoch, lines: g.lines ?? {} });
    },
  });
  const release = new ReleaseListener({ agentId: cfg.id, agentKey: cred.agentKey, broker, clock, log, lease, consumer, events });
  await release.start();
  const running = () => consumer.mode !== 'stopped';
  let leaving = false;
  startHeartbeat({ agentId: cfg.id, agentKey: cred.agentKey, broker, clock, lease, intervalMs: cfg.heartbeatInterval, releaseAfterMs: cfg.releaseAfterMs, holding: () => lanes.holding(), lanes: () => lanes.reports(), running, giveBack: (why) => consumer.giveBack(why), leaving: () => leaving });
  log.info({ queue, devices: devices.size, prefetch: cfg.prefetch }, 'agent started');
  for (const d of cfg.devices) if (d.tls?.allowInvalidCertificate) log.warn({ deviceId: d.id }, 'TLS certificate checks are off for this device (tls.allowInvalidCertificate): anyone on the path can pose as it');

  const stop = () => stopParts({ receipts, consumer, broker, client, log });
  return {
    id: cfg.id,
    queue,
    events,
    lanes: () => lanes.snapshot(),
    stop,
    async leave({ waitMs = LEAVE_WAIT_MS } = {}) {
      const how = lease.current() === null ? 'not-active' : await handOverFirst({ release, clock, log, waitMs, answerMs: waitMs + cfg.requestTimeoutMs, leaving: () => (leaving = true) });
      await stop();
      return how;
    },
  };
}

/** For good: what is on the wire finishes, receipts go out, the queue goes back, the connections close. */
async function stopParts(o: { receipts: ReturnType<typeof createReceipts>; consumer: QueueConsumer; broker: Broker; client: DeviceClient; log: Logger }): Promise<void> {
  o.receipts.stop();
  await o.consumer.stop();
  await o.receipts.beforeRelease();
  await o.broker.settle();
  await o.broker.close();
  await o.client.close();
  o.log.info('agent stopped');
}

function amqpBroker(cfg: AgentConfig, clock: Clock, log: Logger): Broker {
  return createAmqpBroker({
    url: cfg.amqpUrl,
    namespace: cfg.namespace,
    queueType: cfg.queueType,
    maxUnconfirmed: 1000,
    connectAttempts: cfg.connectAttempts,
    reconnectInitialMs: 100,
    reconnectMaxMs: 5000,
    clock,
    logger: log,
    connectionName: agentConnectionName(cfg.namespace, cfg.id),
    heartbeatSec: cfg.brokerHeartbeatSec,
  });
}
