/**
 * The agent: consumes its own durable queue, pushes each message to its device through the device
 * lanes (FIFO per device, devices in parallel), heartbeats, and reports receipts (exactly the seqs
 * it applied, as ranges, in batches; dead letters one by one and confirmed before the message is acked).
 *
 * Its hold on its queue, one mode at a time:
 * - consuming  its consumer is attached (from the start, and again after each grant that finds
 *              it released); deliveries go to the lanes.
 * - releasing  it gives the queue back (its lease lapsed, it held messages without one, a device
 *              fenced it, or its broker connection dropped): the requests on the wire finish once,
 *              then the consumer goes together with every delivery it still holds
 *              (`Subscription.release`), so the runtime never sees the queue without a consumer
 *              while one of its messages is out. A grant meanwhile: it consumes once released.
 * - released   no consumer, and none comes back on its own (not after a reconnect either): only
 *              a lease grant brings it back to consuming, which is how the runtime takes it back.
 * - stopped    for good.
 *
 * Trust: it holds its credential only (its own key and the stream key, src/trust.ts). It seals
 * its heartbeats and receipts with its key, takes a grant only when sealed with its key for this
 * process and one of its own heartbeats, and dead-letters unread a queued message without the
 * runtime's valid mac (reason `unauthenticated`).
 */
import { agentConnectionName } from '../topology.ts';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { createAmqpBroker } from '../adapters/amqp/broker.ts';
import { systemClock } from '../clock.ts';
import { resolveAgentConfig, type AgentConfig } from '../config.ts';
import { DeviceLanes } from './device-lanes.ts';
import { createHttpDeviceClient } from '../adapters/http-device-client.ts';
import { limitedWarn } from '../log-limit.ts';
import { silentLogger } from '../logger.ts';
import type { Broker, Clock, DeviceClient, Subscription } from '../ports.ts';
import { Lease } from './lease.ts';
import { parseGrant } from '../side-channel.ts';
import { MAX_RECEIPT_RANGES, type AppliedRange, type HeartbeatEvent, type ReceiptEvent } from '../side-channel.ts';
import { SeqRanges } from '../seq-ranges.ts';
import { messageProblem, parseAgentCredential, seal, unseal, type AgentCredential } from '../trust.ts';

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
  /** `applied`, `retry`, `dead-letter`, `anomaly`, `blocked`, `skipped`, `fenced`, `releasing` and `released` {why}, `lease` {epoch} */
  readonly events: EventEmitter;
  lanes(): ReturnType<DeviceLanes['snapshot']>;
  stop(): Promise<void>;
}

/** The broker connection name of an agent (what fencing closes). */

/** Starts an agent in this process. Options as in `AgentConfig`; `id` and `devices` are required. */
export async function startAgent(options: Partial<AgentConfig> & { id: string; devices: AgentConfig['devices'] }, ports: AgentPorts = {}): Promise<AgentHandle> {
  const cfg = resolveAgentConfig(options as unknown as Record<string, unknown>);
  // resolveAgentConfig checked it: a credential, of this agent
  const cred = parseAgentCredential(cfg.key) as AgentCredential;
  const clock = ports.clock ?? systemClock;
  const log = (ports.logger ?? silentLogger()).child({ actor: 'agent', agentId: cfg.id });
  const broker =
    ports.broker ??
    createAmqpBroker({
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
  const client = ports.deviceClient ?? createHttpDeviceClient({ timeoutMs: cfg.requestTimeoutMs });
  const devices = new Map(cfg.devices.map((d) => [d.id, d]));
  const events = new EventEmitter();
  const lease = new Lease(clock, ports.incarnation ?? randomUUID());
  // under the epoch of its newest lease: the runtime takes a receipt only from the agent that epoch was granted to
  const receipt = (r: DistributiveOmit<ReceiptEvent, 'epoch'>) => broker.publishEvent('receipts', seal(cred.agentKey, 'receipts', cfg.id, { ...r, epoch: lease.epoch }));

  // applied receipts: exactly the seqs applied per device since the last flush. The runtime counts
  // a seq as applied only when a receipt names it, so a receipt that could not be sent is sent again,
  // and each message is acked only once its receipt is out (`reported`).
  const pendingApplied = new Map<string, SeqRanges>();
  let reported: Array<() => void> = [];
  let flushTimer: { cancel(): void } | null = null;
  // flushes are independent (ranges can arrive in any order): one hung publish must not hold the next
  const flushing = new Set<Promise<void>>();
  const scheduleFlush = (ms: number) => (flushTimer ??= clock.setTimeout(() => void flushNow(), ms));
  const flushNow = () => {
    flushTimer?.cancel();
    flushTimer = null;
    const p = flush();
    flushing.add(p);
    void p.finally(() => flushing.delete(p));
    return p;
  };
  const flush = async () => {
    if (pendingApplied.size === 0) return;
    const ranges: AppliedRange[] = [];
    for (const [deviceId, rs] of pendingApplied) for (const r of rs.list()) ranges.push({ deviceId, ...r });
    pendingApplied.clear();
    const waiting = reported;
    reported = [];
    let failed = false;
    for (let i = 0; i < ranges.length; i += MAX_RECEIPT_RANGES) {
      const batch = ranges.slice(i, i + MAX_RECEIPT_RANGES);
      await receipt({ type: 'applied', agentId: cfg.id, ranges: batch }).catch((err) => {
        failed = true;
        for (const r of batch) pendingOf(r.deviceId).addRange(r.from, r.to);
        log.warn({ err: (err as Error).message, ranges: batch.length }, 'could not publish receipts; sending them again shortly (their messages stay unacked meanwhile)');
      });
    }
    if (!failed) for (const ack of waiting) ack();
    else {
      reported.push(...waiting);
      if (hold.mode !== 'stopped') scheduleFlush(Math.max(cfg.receiptFlushMs, 1000));
    }
  };
  /** before the queue goes back: receipts out, so their messages are acked rather than handed on (bounded: a hung broker call must not hold the release) */
  const flushBeforeRelease = () => {
    let timer: { cancel(): void } | null = null;
    const gaveUp = new Promise<void>((resolve) => (timer = clock.setTimeout(resolve, 1000)));
    return Promise.race([Promise.all([...flushing, flushNow()]), gaveUp]).finally(() => timer?.cancel());
  };
  const pendingOf = (deviceId: string) => {
    let rs = pendingApplied.get(deviceId);
    if (!rs) pendingApplied.set(deviceId, (rs = new SeqRanges()));
    return rs;
  };

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
    applied: (deviceId, seq) => {
      pendingOf(deviceId).add(seq);
      scheduleFlush(cfg.receiptFlushMs);
      return new Promise<void>((resolve) => reported.push(resolve));
    },
    deadLetter: async (entry, kind) => {
      log.error({ deviceId: entry.deviceId, seq: entry.seq, reason: entry.reason, status: entry.status, kind }, 'message dead-lettered');
      await receipt({ type: 'dead-letter', agentId: cfg.id, entry, anomaly: kind === 'anomaly' });
    },
    fenced: (deviceId, outcome) => {
      log.error({ deviceId, epoch: lease.epoch, reason: 'reason' in outcome ? outcome.reason : '' }, 'device says this agent is fenced (a newer epoch wrote): it stops delivering and gives its messages back');
      lease.revoke();
      events.emit('fenced', { deviceId });
      void release('fenced by a device');
    },
  });
  for (const name of ['applied', 'retry', 'dead-letter', 'anomaly', 'blocked', 'skipped']) lanes.on(name, (e) => events.emit(name, e));

  await broker.start();
  const queue = await broker.assertAgentQueue(cfg.id);
  type Hold =
    | { mode: 'consuming'; sub: Promise<Subscription> }
    | { mode: 'releasing'; done: Promise<void>; thenConsume: boolean }
    | { mode: 'released' }
    | { mode: 'stopped' };
  let hold: Hold = { mode: 'released' };
  const consume = (): Promise<Subscription> => {
    lanes.resume();
    const h = { mode: 'consuming' } as Extract<Hold, { mode: 'consuming' }>;
    hold = h;
    // deliveries of an older subscription are left alone: that subscription returns them
    h.sub = broker.consume(queue, (d) => hold === h && lanes.accept(d), {
      prefetch: cfg.prefetch,
      onLost: () => hold === h && void release('the broker connection dropped (the broker took its deliveries back); consuming again on the next lease grant'),
    });
    h.sub.catch((err: Error) => {
      if (hold !== h) return;
      hold = { mode: 'released' };
      log.warn({ err: err.message }, 'could not consume (the broker connection is going); the next grant tries again');
    });
    return h.sub;
  };
  /** gives the queue back: what is on the wire finishes, then the consumer and every delivery it holds go together */
  const release = async (why: string) => {
    if (hold.mode !== 'consuming') return;
    const { sub } = hold;
    let finished!: () => void;
    const h: Extract<Hold, { mode: 'releasing' }> = { mode: 'releasing', done: new Promise((resolve) => (finished = resolve)), thenConsume: false };
    hold = h;
    log.warn({ why }, 'giving the queue back: requests on the wire finish first');
    events.emit('releasing', { why });
    const returned = await lanes.giveBack();
    await flushBeforeRelease();
    await sub.then(
      (s) => s.release(),
      () => {},
    );
    log.warn({ why, returned }, 'released the queue');
    events.emit('released', { why });
    finished();
    if (hold !== h) return; // stopped meanwhile
    hold = { mode: 'released' };
    if (h.thenConsume && lease.current() !== null) {
      log.info({ epoch: lease.epoch }, 'lease granted while releasing: consuming again');
      consume().catch(() => {});
    }
  };
  await consume();

  const refused = limitedWarn(clock, log);
  await broker.subscribeEvents(
    'control',
    (p) => {
      const sealed = unseal((id) => (id === cfg.id ? cred.agentKey : null), 'control', p);
      if ('invalid' in sealed) return refused('grant-unauthenticated', { why: sealed.invalid }, 'refused a lease grant the runtime did not sign for this agent');
      const g = parseGrant(sealed.event);
      if (!g || g.agentId !== cfg.id || !lease.grant(g)) return;
      for (const [deviceId, seq] of Object.entries(g.watermarks)) lanes.setWatermark(deviceId, seq, g.epoch);
      if (hold.mode === 'released') {
        log.info({ epoch: g.epoch }, 'lease granted again: consuming');
        consume().catch(() => {});
      } else if (hold.mode === 'releasing') hold.thenConsume = true;
      events.emit('lease', { epoch: g.epoch });
    },
    cfg.id,
  );

  const beat: HeartbeatEvent = { type: 'heartbeat', agentId: cfg.id, host: hostname(), pid: process.pid, sentAt: 0, beat: 0, incarnation: lease.incarnation };
  // since when this agent has held messages without a valid lease (it may never have had one)
  let waitingSince: number | null = null;
  const heartbeat = () => {
    if (hold.mode === 'stopped') return;
    const now = clock.monotonic();
    void broker.publishEvent('heartbeats', seal(cred.agentKey, 'heartbeats', cfg.id, { ...beat, sentAt: clock.now(), beat: lease.beat() }));
    waitingSince = lease.current() === null && lanes.holding() > 0 ? (waitingSince ?? now) : null;
    if (lease.lapsedFor() > cfg.releaseAfterMs) void release(`lease lapsed ${Math.round(lease.lapsedFor())} ms ago`);
    else if (waitingSince !== null && now - waitingSince > cfg.releaseAfterMs * 2) {
      // chosen, then passed over before any grant reached it: give the messages back so they can move
      void release(`held messages ${Math.round(now - waitingSince)} ms without a lease`);
    }
    clock.setTimeout(heartbeat, cfg.heartbeatInterval);
  };
  heartbeat();
  log.info({ queue, devices: devices.size, prefetch: cfg.prefetch }, 'agent started');
  for (const d of cfg.devices) if (d.tls?.allowInvalidCertificate) log.warn({ deviceId: d.id }, 'TLS certificate checks are off for this device (tls.allowInvalidCertificate): anyone on the path can pose as it');

  return {
    id: cfg.id,
    queue,
    events,
    lanes: () => lanes.snapshot(),
    async stop() {
      const was = hold;
      hold = { mode: 'stopped' };
      await lanes.stop();
      await flushBeforeRelease();
      if (was.mode === 'consuming') await was.sub.then((s) => s.release(), () => {});
      if (was.mode === 'releasing') await was.done;
      await flushBeforeRelease();
      await broker.settle();
      await broker.close();
      await client.close();
      log.info('agent stopped');
    },
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
