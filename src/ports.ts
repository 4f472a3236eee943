/**
 * The ports: the small interfaces through which baton meets the world.
 *
 * Glossary
 * - host: the application that embeds the runtime and calls `dispatch()`.
 * - message: one configuration change for one device (`deviceId`, `method`, `path`, `body`,
 *   optional `key`); baton gives it a `seq`, strictly increasing per device.
 * - agent: a separate process that consumes its own queue and pushes messages to devices.
 * - active agent: the one recorded in `agent_service_used`.
 * - epoch: the fencing epoch, raised by every switch. One source: the coordinator's assignment
 *   (`agent_service_used.epoch`) -> the lease the runtime grants the active agent -> the agent's
 *   Lease -> the device write (`X-Baton-Epoch`). Messages carry none.
 * - park: store a message in `message_queues` while no agent may be sent to.
 * - replay: send parked messages, oldest first, to the active agent.
 * - watermark: the highest seq a device is known to have applied.
 * - receipt: an agent's report that a message was applied (or dead-lettered).
  *
 * Longer than 300 lines: every port in one file, so that what baton needs of the world reads as
 * one page; each port is a few small role interfaces.
 */
import type { Assignment, Phase } from '../machines/coordinator.machine.ts';

export type { Assignment, Phase };

/** A message as it travels on the wire (AMQP body and device request). */
export interface WireMessage {
  deviceId: string;
  seq: number;
  method: HttpMethod;
  path: string;
  body: unknown;
  key?: string;
  /** the runtime's signature under the stream key (src/trust.ts); agents refuse a message without a valid one */
  mac?: string;
}

export type HttpMethod = 'PUT' | 'POST' | 'PATCH' | 'DELETE';

// ---------------------------------------------------------------- Clock

export interface Clock {
  /** wall-clock ms, for records */
  now(): number;
  /** monotonic ms, for deadlines and durations */
  monotonic(): number;
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

// ---------------------------------------------------------------- Broker

/** One message taken from a queue. `message` is null when the body could not be decoded. */
export interface Delivery {
  message: WireMessage | null;
  /** why `message` is null */
  malformed?: string;
  raw: Buffer;
  redelivered: boolean;
  ack(): void;
  nack(requeue: boolean): void;
}

export interface QueueInfo {
  messages: number;
  consumers: number;
}

export interface Subscription {
  /** stops new deliveries; deliveries in hand can still be acked until the broker is closed */
  cancel(): Promise<void>;
  /**
   * stops deliveries and returns every delivery not yet acked to its queue, in the same step as
   * the consumer goes (its channel closes): the queue never shows no consumer while one of its
   * messages is out. Deliveries in hand can no longer be settled.
   */
  release(): Promise<void>;
}

/** Side channels, apart from the config stream. */
export type EventChannel = 'heartbeats' | 'receipts' | 'control';

export interface Broker {
  /** connect (with retries bounded by the adapter's options); throws `broker-unavailable` */
  start(): Promise<void>;
  /** declare the durable queue of an agent and return its name */
  assertAgentQueue(agentId: string): Promise<string>;
  /**
   * publish persistently; resolves once the broker confirmed it. `wanted`, asked each time the
   * message is about to go out (first, and again after a reconnect), returns null while the caller
   * still wants it sent, or why not: then it is not sent and the call rejects with `not-leader`
   * (`details.maybeStored` when an earlier attempt may have reached the broker before a drop).
   */
  publish(queue: string, message: WireMessage, opts?: PublishOptions): Promise<void>;
  /** resolves once every publish in flight is confirmed (or failed) */
  settle(): Promise<void>;
  /** message and consumer counts; null when the queue does not exist */
  queueInfo(queue: string): Promise<QueueInfo | null>;
  /**
   * consume a queue with manual acks and a bounded prefetch. The consumer ends with its connection:
   * unlike event subscriptions it is not attached again when the adapter reconnects (the broker
   * took its unacked deliveries back; consuming again is the caller's decision), and `onLost`
   * says so. Asked for while the connection is down, it attaches once the connection is back.
   */
  consume(queue: string, onDelivery: (d: Delivery) => void, opts: { prefetch: number; onLost?: () => void }): Promise<Subscription>;
  /**
   * publish on a side channel; receipts are durable and confirmed; heartbeats (to every runtime)
   * and control messages (to the agent named by `key`, dropped by the broker after `ttlMs`) are not
   */
  publishEvent(channel: EventChannel, payload: object, opts?: { key?: string; ttlMs?: number }): Promise<void>;
  /** receive a side channel's events (receipts: acked after the handler resolves; control: those for `key`) */
  subscribeEvents(channel: EventChannel, handler: (payload: unknown) => Promise<void> | void, key?: string): Promise<Subscription>;
  /**
   * move every message of queue `from` to queue `to`, in order, with confirms; resolves with the
   * count once `from` is empty. `wanted` is asked before each message goes: once it says why not,
   * the move stops with `not-leader`, what moved is a prefix and the rest stays in `from`, in order
   */
  move(from: string, to: string, opts?: PublishOptions): Promise<number>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------- ManagementApi

/**
 * The broker's management side (RabbitMQ's management HTTP API; in memory for tests): what the
 * runtime uses, when it is configured, to fence an old agent at once and to move its queue on the
 * broker instead of through itself.
 */
export interface ManagementApi {
  /** closes every connection the client named `connectionName`; returns how many */
  closeConnections(connectionName: string, reason: string): Promise<number>;
  /** moves `from` to `to` with a dynamic shovel named `name`, in order, behind what `to` holds; resolves once it has finished */
  shovel(name: string, from: string, to: string, opts: { pollMs: number; sleep(ms: number): Promise<void> }): Promise<void>;
}

// ---------------------------------------------------------------- Store

export interface AgentRecord {
  agentId: string;
  topic: string;
  host: string;
  status: 'up' | 'down';
  lastHeartbeat: Date;
}

export interface ParkedRow {
  id: number;
  message: WireMessage;
}

export interface DeviceStream {
  deviceId: string;
  nextSeq: number;
  watermark: number;
}

/** What the leader knows settled (applied or dead-lettered) of a device: up to `watermark`, and the ranges above it. */
export interface SettledRecord {
  deviceId: string;
  watermark: number;
  /** inclusive [from, to] runs of settled seqs above the watermark, increasing */
  ranges: Array<[number, number]>;
}

export interface PublishOptions {
  wanted?: () => string | null;
}

export interface DeadLetter {
  deviceId: string;
  seq: number;
  epoch: number;
  agentId: string;
  reason: string;
  status: number | null;
  response: string | null;
  payload: string;
}

/** One row of `switches`: the history of handovers. */
export interface SwitchRecord {
  id: string;
  fromAgent: string | null;
  toAgent: string | null;
  epoch: number;
  reason: string;
  phase: Phase;
  startedAt: Date;
  drainingAt: Date | null;
  replayingAt: Date | null;
  completedAt: Date | null;
  moved: number;
  replayed: number;
}

export interface Leadership {
  leader: boolean;
  /** who holds it (this runtime when `leader`), null when nobody */
  holder: string | null;
  /** the leader term: changes whenever the holder changes */
  epoch: number;
  /** the base URL the holder advertised with its term (its `baton serve`, option `advertise`); null when it gave none or nobody holds the row */
  url: string | null;
}

/** A runtime's leader term: writes only a leader may make name it, and fail once it is over. */
export interface LeaderTerm {
  holder: string;
  epoch: number;
}

/*
 * The Store port, by role. Writes only a leader may make name its term and run only while that term holds the leadership
 * row unexpired, checked in the same statement (the row is locked against a takeover until they
 * commit): otherwise they change nothing and reject with `not-leader`. A former leader's late
 * statement (a pause, a slow connection) can then never undo what its successor wrote.
 */

/** The schema and the connection. */
export interface StoreLifecycle {
  /** bring the schema up to date (MikroORM migrations) */
  migrate(): Promise<void>;
  close(): Promise<void>;
}

/** The runtime leadership row (DESIGN.md §5): who leads, in which term. */
export interface LeadershipStore {
  /**
   * takes or renews the runtime leadership for `ttlMs` (judged by the database clock). `renew`: the
   * epoch of the term the caller holds. A renewal of the current, unexpired term keeps its epoch;
   * any other take (no `renew`, or the row expired) starts a new term with a higher epoch, even for
   * the same holder, so statements sent in an old term (and delayed) never count in a new one. A
   * renewal of a term that is no longer the row's changes nothing (not leader). `url`: the base URL
   * the holder advertises, stored with the row by every take and renewal (null: none); a standby
   * reads the holder's from the answer.
   */
  acquireLeadership(holder: string, ttlMs: number, renew?: number | null, url?: string | null): Promise<Leadership>;
  releaseLeadership(holder: string): Promise<void>;
}

/** The active agent and the switches: the coordinator's durable state. */
export interface AssignmentStore {
  getAssignment(): Promise<Assignment | null>;
  /** record the first agent if none is recorded (compare-and-set); returns the row that won */
  recordFirstAgent(agent: { agentId: string; topic: string; host: string }, term: LeaderTerm): Promise<Assignment>;
  /**
   * Starts a switch away from the recorded agent: raises the epoch, lock = 1, phase = switching,
   * records the switch, in one transaction, only if the epoch is still `expectEpoch` and no switch
   * runs (compare-and-set). Null when another runtime got there first.
   */
  beginSwitch(s: { expectEpoch: number; switchId: string; reason: string; term: LeaderTerm }): Promise<Assignment | null>;
  /** records the new agent of a running switch */
  recordCandidate(switchId: string, agent: { agentId: string; topic: string; host: string }, term: LeaderTerm): Promise<Assignment>;
  /** moves a running switch to `draining` or `replaying` (with the moved count when known) */
  setPhase(switchId: string, phase: 'draining' | 'replaying', term: LeaderTerm, counts?: { moved?: number }): Promise<Assignment>;
  /** ends a switch: phase normal, lock 0 */
  completeSwitch(switchId: string, replayed: number, term: LeaderTerm): Promise<Assignment>;
  listSwitches(): Promise<SwitchRecord[]>;
}

/** The agents the runtime has heard of. */
export interface AgentStore {
  upsertAgent(agent: AgentRecord): Promise<void>;
  listAgents(): Promise<AgentRecord[]>;
}

/** Seq blocks per device. */
export interface SeqStore {
  /**
   * reserve `count` seqs for a device; returns the first one. Only while `term` holds the
   * leadership row unexpired, checked in the same statement: else `not-leader`, nothing reserved
   */
  reserveSeqs(deviceId: string, count: number, term: LeaderTerm): Promise<number>;
}

/**
 * Which parked rows a read takes: every one (no filter), all but those of the devices in `except`
 * (the replay leaves the rows of held lines parked), or only those of `deviceId` (a line's release).
 */
export interface ParkedFilter {
  except?: readonly string[];
  deviceId?: string;
}

/** Messages parked while a switch runs or while a device's line is held (`message_queues`). */
export interface ParkingStore {
  /** insert parked messages in order, in one statement (a repeated one is ignored) */
  park(messages: WireMessage[], term: LeaderTerm): Promise<void>;
  /** the oldest rows first (id order), of the devices `filter` names */
  fetchParked(limit: number, filter?: ParkedFilter): Promise<ParkedRow[]>;
  /**
   * How an ambiguous park is resolved: which of these messages (by device and seq) are parked now.
   * Those that are not are marked refused in the same statement, so a park of them still on its way
   * (delayed on a connection the caller gave up on) changes nothing when it lands: "not parked" stays true.
   */
  resolveParked(keys: Array<{ deviceId: string; seq: number }>): Promise<Array<{ deviceId: string; seq: number }>>;
  deleteParked(ids: number[]): Promise<void>;
  countParked(filter?: ParkedFilter): Promise<number>;
  /** parked messages per device (devices with none are left out) */
  countParkedByDevice(): Promise<Record<string, number>>;
}

/** What each device has applied: watermarks and settled ranges (`device_streams`). */
export interface DeliveryStore {
  /** raise watermarks (never lowers one) */
  advanceWatermarks(marks: Array<{ deviceId: string; seq: number }>): Promise<void>;
  /**
   * raise watermarks and record the seq ranges settled above them, in one statement. A record
   * replaces the last one only if its `rev` is higher (each write of a leader rises: a write that
   * outlived its deadline and lands after a newer one changes no ranges)
   */
  recordSettled(entries: SettledRecord[], term: LeaderTerm, rev: number): Promise<void>;
  /** the settled ranges recorded per device (with the watermark) */
  settledRecords(): Promise<SettledRecord[]>;
  deviceStreams(): Promise<DeviceStream[]>;
}

/** Messages a device refused for good. */
export interface DeadLetterStore {
  /**
   * Records a dead letter. A second one for the same device and seq (a retried message refused
   * again) replaces the first's reason, answer, epoch and agent (and `at`: when it was refused
   * last), keeps its id and payload and opens it again (resolution null). Malformed messages
   * (seq 0) are each kept.
   */
  deadLetter(entry: DeadLetter): Promise<void>;
  /** newest first (by id); `open`: only those without a resolution; `limit` default 1000 */
  listDeadLetters(filter?: { deviceId?: string; reason?: string; open?: boolean; limit?: number }): Promise<DeadLetterView[]>;
  getDeadLetter(id: number): Promise<DeadLetterView | null>;
  /** the dead letter of a device's seq (the newest, for seq 0), or null */
  findDeadLetter(deviceId: string, seq: number): Promise<DeadLetterView | null>;
  /** settles it (null opens it again); false when there is no such id */
  resolveDeadLetter(id: number, resolution: DeadLetterView['resolution']): Promise<boolean>;
}

/**
 * The runtime's standing order for one device's line, repeated in every grant while it stands (so a
 * lost grant loses nothing, and an agent that takes over after a failover learns it with its first
 * lease). Durable in the runtime's database; an operator's action changes it.
 * - `paused`: send nothing to the device (the request on the wire finishes); hold what arrives.
 * - `blockedAt`: the device refused this seq and the line is held there: send nothing above it.
 *   An agent that blocked a lane itself (its dead-letter receipt said `blocked`) keeps it blocked
 *   until an order releases it, whatever the grants said before the runtime heard of the block.
 * - `retry`: the operator asked to send the refused seq `retry.seq` again (it is published to the agent's
 *   queue once more, behind messages already there): hold the line until that delivery arrives, send
 *   it first (it is not a redelivery to skip), then go on in seq order. A second refusal blocks again.
 * - `releasedThrough`: blocks at or below this seq are released (skipped, or retried and settled):
 *   a lane blocked at a seq at or below it goes on.
 */
export interface LineOrder {
  paused: boolean;
  blockedAt: number | null;
  /** `n` rises with each operator retry of this device (also across a refusal that ended the last one, and a change of leader): an agent acts on each (seq, n) once */
  retry: { seq: number; n: number } | null;
  releasedThrough: number;
}

export type AuditAction = 'pause' | 'resume' | 'unblock-retry' | 'unblock-skip' | 'dead-letter-resend' | 'dead-letter-drop' | 'handover';

/** One row of the audit table: what was done, to what, by whom, when, with what outcome. */
export interface AuditEntry {
  id: number;
  /** wall clock, ms */
  at: number;
  action: AuditAction;
  /** a device id, a dead letter id (`dead-letter:12`) or an agent id */
  target: string;
  by: string;
  outcome: 'done' | 'already' | 'refused' | 'failed';
  detail: string;
}

/** A stored dead letter with its id and what became of it (`payload`: the message as it was delivered, the signed wire message, JSON). */
export interface DeadLetterView extends DeadLetter {
  id: number;
  /** wall clock, ms */
  at: number;
  /** null: open; otherwise how an operator settled it (`resent` names the new seq) */
  resolution: { kind: 'retried' | 'skipped' | 'resent' | 'dropped'; by: string; at: number; detail: string; seq?: number } | null;
}

/** The runtime's standing orders for device lines (paused, blocked, retry, released): see LineOrder in side-channel.ts. */
export interface LineStore {
  /** every stored order (devices never ordered have none) */
  lineOrders(): Promise<StoredLineOrder[]>;
  /** writes a device's order, only in this leader term (`not-leader` otherwise, nothing written) */
  setLineOrder(order: StoredLineOrder, term: LeaderTerm): Promise<void>;
}

export interface StoredLineOrder {
  deviceId: string;
  order: LineOrder;
  /** who set it last and when (wall clock, ms) */
  by: string;
  at: number;
  /** why it stands, for the operator: the device's answer for a block, the operator's words for a pause */
  note: string;
}

/** The audit table: operator actions, newest last by id. */
export interface AuditStore {
  recordAudit(entry: Omit<AuditEntry, 'id'>): Promise<AuditEntry>;
  /** the newest first; `limit` default 100 */
  listAudit(opts?: { limit?: number; target?: string }): Promise<AuditEntry[]>;
}

/** A stored `Idempotency-Key` of `baton serve`: the request it first came with (a hash) and, once carried out, the answer. */
export interface IdempotencyRecord {
  key: string;
  /** the hash of the first request (route and body) that came with the key */
  hash: string;
  /** when the request that holds it claimed it (wall clock, ms): the claim's token */
  claimedAt: number;
  /** after this (wall clock, ms) the key counts as unused, and is purged */
  expiresAt: number;
  /** the first answer, once it was given; null while its request is being carried out (or its server died) */
  answer: { status: number; body: string } | null;
}

/**
 * `baton serve`'s idempotency keys (src/serve/idempotency.ts): a key is claimed before its request is
 * carried out, then completed with the answer (or released when nothing was done). Not leader-only:
 * the keys outlive leader terms. Times are the server's wall clock, ms.
 */
export interface IdempotencyStore {
  /** claims `key` unless a record of it stands unexpired: null when claimed now, else that record (an expired one is replaced) */
  claimIdempotencyKey(claim: { key: string; hash: string; at: number; expiresAt: number }): Promise<IdempotencyRecord | null>;
  /** takes over a claim of the same hash with no answer made before `staleBefore` (its server died, or never finished): true for the one caller that took it */
  retakeIdempotencyKey(claim: { key: string; hash: string; at: number; expiresAt: number; staleBefore: number }): Promise<boolean>;
  /** records the answer of the claim made at `claimedAt` (a claim taken over since is left alone): true when recorded */
  completeIdempotencyKey(key: string, claimedAt: number, answer: { status: number; body: string }): Promise<boolean>;
  /** forgets the claim made at `claimedAt` while it has no answer (its request did nothing): the key is free again */
  releaseIdempotencyKey(key: string, claimedAt: number): Promise<void>;
  /** deletes the records expired at `now`; how many */
  purgeIdempotencyKeys(now: number): Promise<number>;
}

/** The database as a whole: one adapter (ORM, in-memory) implements every role; each part of baton takes only the roles it uses. */
export type Store = StoreLifecycle & LeadershipStore & AssignmentStore & AgentStore & SeqStore & ParkingStore & DeliveryStore & DeadLetterStore & LineStore & AuditStore & IdempotencyStore;

// ---------------------------------------------------------------- DeviceClient

/** Where a device lives and how to talk to it. */
export interface DeviceConfig {
  id: string;
  url: string;
  /** per-request deadline, ms */
  timeoutMs?: number;
  /** the device refuses writes from a lower epoch (the simulator does) */
  fencesByEpoch?: boolean;
  /** the device answers `GET /watermark` */
  reportsWatermark?: boolean;
  /** TLS to an https device: PEM files (paths); invalid certificates are refused unless allowed */
  tls?: DeviceTls;
}

export interface DeviceTls {
  /** CA certificate(s) that sign the device's certificate (default: Node's trusted CAs) */
  ca?: string;
  /** client certificate and its key, for devices that require one (both or neither) */
  cert?: string;
  key?: string;
  /** accept a certificate that does not verify (self-signed lab gear); the agent warns at start */
  allowInvalidCertificate?: boolean;
}

export type DeviceOutcome =
  | { kind: 'applied'; status: number }
  | { kind: 'transient'; status: number | null; reason: string }
  | { kind: 'permanent'; status: number | null; reason: string; response: string | null }
  | { kind: 'fenced'; status: number; reason: string };

export interface DeviceClient {
  /** writes `message` under `epoch`, the agent's lease epoch (the only epoch a device write carries) */
  send(device: DeviceConfig, message: WireMessage, epoch: number): Promise<DeviceOutcome>;
  /** the device's own watermark, or null when it does not report one */
  watermark(device: DeviceConfig): Promise<number | null>;
  close(): Promise<void>;
}
