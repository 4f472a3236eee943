/**
 * What a host (and the inspector) sees of a runtime: `dispatch()`'s answer, `status()`, the events
 * and the `Runtime` interface itself. Types only; `src/runtime/` implements them.
 */
import type { AgentEmitted } from '../machines/agent.machine.ts';
import type { Assignment, CheckVerdict, Phase } from '../machines/coordinator.machine.ts';
import type { AuditAction, AuditEntry, DeadLetterView, DeviceStream, SwitchRecord } from './ports.ts';

export type { AuditAction, AuditEntry, DeadLetterView };
import type { AppliedRange, LaneReport } from './side-channel.ts';
import type { ConfigMessage } from './wire.ts';

/** An agent as the leading runtime sees it. */
export interface AgentView {
  agentId: string;
  topic: string;
  host: string;
  state: 'idle' | 'active' | 'suspect' | 'dead';
  lastHeartbeat: number | null;
}

/** Who leads (`Runtime.leader()`): its runtime id, and the base URL of its `baton serve` (null: it advertised none). */
export interface LeaderView {
  id: string;
  url: string | null;
}

/**
 * What became of one accepted message (`Runtime.fate()`). `fate`: `accepted` (durable, not known
 * applied or dead-lettered yet), `applied` (the device applied it), `dead-lettered` (it will not be,
 * unless an operator retries it: `answer` says why).
 */
export interface MessageFate {
  deviceId: string;
  seq: number;
  fate: 'accepted' | 'applied' | 'dead-lettered';
  /** dead-lettered: the device's answer (`status` null: no HTTP answer, e.g. a message the agent could not read, or an anomaly) */
  answer?: { status: number | null; reason: string; response: string | null };
  /** the seq's dead letter, if it has one: its id and how an operator settled it (null: open). An applied seq has one when an operator's retry applied it */
  deadLetter?: { id: number; resolution: DeadLetterView['resolution'] };
  /** `ledger`: the leader's receipts, exact for its term; `stored`: the durable tables (a standby), true as of the leader's last receipt taken */
  source: 'ledger' | 'stored';
}

/** `started` (with its reason), then the phases as the coordinator enters them (`switching` again when a restarted leader resumes one), then `completed` */
export type SwitchStep = 'started' | 'switching' | 'awaiting-candidate' | 'draining' | 'replaying' | 'completed';

/** What an entry tells. */
export type JournalEvent =
  | { type: 'applied'; deviceId: string; from: number; to: number }
  | { type: 'dead-lettered'; deviceId: string; seq: number; reason: string }
  /** `from`: the agent switched away from, `to`: the new one (null while none is chosen), `epoch`: the new epoch; `reason` when it started */
  | { type: 'switch'; step: SwitchStep; switchId: string | null; from: string | null; to: string | null; epoch: number; reason?: string }
  | { type: 'alarm'; state: 'raised' | 'cleared'; alarm: Alarm; clearedAt?: number };

/** One journal entry: its id (`<term>-<n>`), when it was recorded (wall clock, ms), what happened. */
export type JournalEntry = { id: string; at: number } & JournalEvent;

/** What `since()` answers: the entries after the id, or why they cannot be told (then read the state afresh and follow on from `newest`). */
export type JournalRead =
  | { ok: true; entries: JournalEntry[] }
  | { ok: false; reason: 'leader-changed' | 'too-old' | 'unknown-id'; message: string; newest: string | null };

/**
 * The event journal (`Runtime.journal`, src/runtime/event-journal.ts): the events a remote client
 * follows, numbered `<term>-<n>` and kept for the last 10,000. Ids do not survive a change of leader.
 */
export interface EventJournalView {
  /** the entries recorded after `lastId`, oldest first, or why they cannot be told (another term, too old, not an id of it) */
  since(lastId: string): JournalRead;
  /** calls `listener` with each entry as it is recorded (synchronously: `since()` then `subscribe()` in one turn misses nothing); returns what stops it */
  subscribe(listener: (e: JournalEntry) => void): () => void;
  /** the id of the newest entry kept (null: none) */
  newest(): string | null;
  /** `since()` then `subscribe()` in one call, as `baton serve` streams them: throws `invalid-request` (details.reason, details.newest) when `since()` cannot tell */
  follow(afterId: string | null, listener: (e: FollowedEntry) => void): () => void;
}

/** An entry as `follow()` hands it on: its id and type (the SSE `id:` and `event:`), and the whole entry as `data`. */
export interface FollowedEntry {
  id: string;
  type: JournalEntry['type'];
  data: JournalEntry;
}

/** What `dispatch()` resolves with once the message is durable. */
export interface Dispatched {
  deviceId: string;
  seq: number;
}

export interface RuntimeStatus {
  state: 'created' | 'starting' | 'running' | 'stopping' | 'stopped';
  runtimeId: string;
  leader: string | null;
  leading: boolean;
  coordinator: unknown;
  dispatcher: unknown;
  assignment: Assignment | null;
  agents: AgentView[];
  parked: number;
  queueDepth: number | null;
  devices: Array<DeviceStream & { lag: number | null; state: DeviceState }>;
  switches: SwitchRecord[];
  inspectorUrl: string | null;
  /** why RabbitMQ blocks publishes right now (a resource alarm), or null */
  brokerBlocked: string | null;
  /** the newest rows of the audit table (operator actions), newest first, at most 20 */
  audit: AuditEntry[];
  /** the alarms open now, the oldest first (`runtime.alarms()`) */
  alarms: Alarm[];
}

/**
 * How a device's line stands, from the runtime's line orders and the active agent's heartbeats:
 * `paused` (an operator paused it: its messages are accepted and kept, none is sent), `blocked` (the
 * device refused a message and the line is held there, onPermanent=block, until an operator retries
 * or skips it), `retrying` (a message is being retried), `flowing` (messages outstanding, none
 * held), `idle` (nothing outstanding).
 */
export type DeviceState = 'flowing' | 'retrying' | 'blocked' | 'paused' | 'idle';

/** Who asked for an operator action (the audit records it): the CLI's user, an inspector token's label, or the host. */
export interface ActionBy {
  /** e.g. `cli:alice`, `token:noc`, `host` (the default) */
  by?: string;
}

/**
 * What an operator action did. `outcome`: `done` (it changed something), `already` (it was in force
 * already: actions are idempotent, and a repeat changes nothing), `refused` is never returned: a
 * refusal throws a BatonError that says why and what to do. `auditId` is the audit row.
 */
export interface ActionResult {
  action: AuditAction;
  target: string;
  outcome: 'done' | 'already';
  detail: string;
  auditId: number;
}




/** An alarm: raised once when its condition begins, cleared once when it ends. */
export interface Alarm {
  /** stable while the condition lasts, e.g. `device-blocked:sw1`, `no-healthy-agent` */
  id: string;
  kind: 'device-blocked' | 'device-lagging' | 'switch-slow' | 'no-healthy-agent' | 'dead-letter';
  /** the device, agent or switch concerned, if any */
  subject: string | null;
  text: string;
  /** this runtime's wall clock, ms */
  since: number;
}

/** One configured device as this runtime sees it: `runtime.devices()`, `/api/devices`, `baton devices`. */
export interface DeviceView {
  deviceId: string;
  state: DeviceState;
  /** state `blocked`: the seq the device refused, its HTTP status and answer, why, since when (the agent's clock, ms) */
  blocked: { seq: number; status: number | null; response: string | null; reason: string; since: number } | null;
  /** state `retrying`: the seq being retried, the attempt, why, since when (the agent's clock, ms) */
  retrying: { seq: number; attempt: number; reason: string; since: number } | null;
  /** the next seq this device's messages get (null: not known until the runtime runs) */
  nextSeq: number | null;
  /** the highest seq such that it and every seq below it are known applied or dead-lettered */
  watermark: number;
  /** seqs dispatched here not yet known applied or dead-lettered (null: none dispatched here) */
  lag: number | null;
  /** age of the oldest of those, ms (null: none) */
  oldestUnappliedMs: number | null;
  /** messages of this device parked in the database now (waiting for a switch to end) */
  parked: number;
  /** dead letters of this device known to this runtime (since it started) */
  deadLetters: number;
  /** the newest failure heard of: a dead letter, a refusal or a retry; `at`: this runtime's clock, ms */
  lastError: { seq: number; text: string; at: number } | null;
  /** when a receipt last named a seq of this device applied (this runtime's clock, ms) */
  lastAppliedAt: number | null;
  /** the active agent, which serves the device (null: none) */
  agentId: string | null;
}

/** Events the runtime emits; tests and hosts await them instead of sleeping. */
export interface RuntimeEvents {
  'agent.registered': { agentId: string };
  'agent.suspect': Extract<AgentEmitted, { type: 'agent.suspect' }>;
  'agent.dead': Extract<AgentEmitted, { type: 'agent.dead' }>;
  'agent.alive': Extract<AgentEmitted, { type: 'agent.alive' }>;
  'coordinator.active': { assignment: Assignment };
  'coordinator.awaiting': Record<string, never>;
  'check.completed': { assignment: Assignment; result: CheckVerdict };
  'switch.started': { assignment: Assignment; reason: string };
  'switch.phase': { assignment: Assignment; phase: Phase | 'awaiting-candidate' };
  'switch.completed': { assignment: Assignment };
  /** a planned handover: the old agent finished what was on the wire and gave its lease back (nothing fenced, no lease waited out) */
  'handover.released': { assignment: Assignment; agentId: string };
  /** a planned handover fell back to fencing, as after a failure: the old agent did not give its lease back (`why`) */
  'handover.fallback': { assignment: Assignment; agentId: string; why: string };
  'leader.won': { runtimeId: string };
  'leader.lost': { runtimeId: string; holder: string | null };
  'replay.completed': { agentId: string; replayed: number };
  'message.dead-lettered': { deviceId: string; seq: number; reason: string; agentId: string };
  /** an agent refused to send a message at or below the device's watermark that nobody applied (also dead-lettered) */
  'delivery.anomaly': { deviceId: string; seq: number; reason: string; agentId: string };
  /** exactly the seqs an agent reported applied (and that were handed out) */
  'receipts.applied': { agentId: string; ranges: AppliedRange[] };
  'watermarks.stored': { marks: Array<{ deviceId: string; seq: number }> };
  /** RabbitMQ blocked publishes (memory or disk alarm): dispatch() calls wait until it lifts */
  'broker.blocked': { reason: string };
  'broker.unblocked': Record<string, never>;
  /** the active agent's report on a device's line changed: it retries or is blocked (`line`), or flows again (null) */
  'device.line': { deviceId: string; agentId: string; line: LaneReport | null };
  /** an operator action was carried out (also recorded in the audit table) */
  'action.done': { entry: AuditEntry };
  'alarm.raised': { alarm: Alarm };
  'alarm.cleared': { alarm: Alarm; clearedAt: number };
}

export interface Runtime {
  start(): Promise<void>;
  /** graceful: refuses new messages, waits until every publish is confirmed and every park committed */
  stop(): Promise<void>;
  dispatch(message: ConfigMessage): Promise<Dispatched>;
  /** resolves once an agent is active and messages go straight to it (parked ones replayed) */
  ready(opts?: { timeoutMs?: number }): Promise<Assignment>;
  /**
   * resolves once the device applied the message (an agent's receipt named that seq; a higher seq
   * applied does not count); rejects with `device-rejected` when it was dead-lettered (also when
   * asked after the fact), or `timeout`. Across a change of leader, a seq at or below the watermark
   * the previous leader stored counts as applied: this runtime cannot know better.
   */
  applied(message: Pick<Dispatched, 'deviceId' | 'seq'>, opts?: { timeoutMs?: number }): Promise<void>;
  /**
   * what became of an accepted message: accepted, applied or dead-lettered (with the device's answer
   * and the dead letter's resolution). A seq never handed out rejects with `unknown-message`, an
   * unconfigured device with `unknown-device`. `waitMs` (0..60000, default 0): on the leader, wait up
   * to that long for the fate to become final, answered as soon as a receipt settles it. A standby
   * answers from the stored tables; asked to wait for a seq not settled there, it rejects with
   * `not-leader` (details.leader) since only the leader hears receipts. Details: src/runtime/fates.ts
   */
  fate(message: Pick<Dispatched, 'deviceId' | 'seq'>, opts?: { waitMs?: number }): Promise<MessageFate>;
  /** the event journal a remote client follows (applied runs, dead letters, switch phases, alarms), resumable by id */
  readonly journal: EventJournalView;
  status(): Promise<RuntimeStatus>;
  /**
   * who leads as far as this runtime knows, and the base URL it advertised (option `advertise`, null
   * when it gave none): itself while it leads; on a standby, the holder of the leadership row as of its
   * last leadership query (every third of `leaderTtl`), so a leader that just died may still be named
   * until its row lapses. null: nobody leads, as far as it knows
   */
  leader(): LeaderView | null;
  /**
   * sets the base URL this runtime advertises with its leader term (option `advertise`), for a
   * `baton serve` that knows its URL only once it listens: stored from the next take or renewal of
   * the leadership row (within a third of `leaderTtl`); null: none. `invalid-config` for a URL that is
   * not an http(s) base URL (credentials, query and fragment are refused)
   */
  advertise(url: string | null): void;
  /** each configured device: how its line stands (blocked, retrying, flowing, idle), its seqs, lag and last failure */
  devices(): Promise<DeviceView[]>;
  /** this runtime's metrics in the Prometheus text format (what the inspector serves on /metrics) */
  metrics(): Promise<string>;

  // Operator actions (docs: README "Operating baton"). Each is idempotent, recorded in the audit
  // table, and refused (BatonError `not-leader`) on a runtime that does not lead.
  /** pause a device: its messages are accepted and kept durably, none is sent (the request on the wire finishes) */
  pause(deviceId: string, opts?: ActionBy): Promise<ActionResult>;
  /** resume a paused device: what was kept goes out in seq order, then new messages */
  resume(deviceId: string, opts?: ActionBy): Promise<ActionResult>;
  /** free a blocked line: `retry` sends the refused message again (same seq) first, `skip` leaves it dead-lettered and goes on */
  unblock(deviceId: string, how: { action: 'retry' | 'skip' } & ActionBy): Promise<ActionResult>;
  /** stored dead letters, newest first */
  deadLetters(filter?: { deviceId?: string; reason?: string; open?: boolean; limit?: number }): Promise<DeadLetterView[]>;
  deadLetter(id: number): Promise<DeadLetterView | null>;
  /** dispatch a dead letter's message again: at the end of the device's line, with a new seq (seqs only rise: the device's watermark is past it) */
  resendDeadLetter(id: number, opts?: ActionBy): Promise<ActionResult & { seq: number }>;
  /** mark a dead letter dropped, with the reason (it stays stored, settled) */
  dropDeadLetter(id: number, opts: { reason: string } & ActionBy): Promise<ActionResult>;
  /**
   * planned handover: the active agent finishes what is on the wire, gives its lease back and its queue moves to `to` (or the
   * healthiest idle agent); resolves once the new agent is active, or rejects with `timeout` after `timeoutMs` (default 60 s: the switch goes on)
   */
  handover(opts?: { to?: string; timeoutMs?: number } & ActionBy): Promise<ActionResult>;
  /** resolves once everything accepted so far (for one device, or all) is applied or dead-lettered; rejects with `timeout` */
  drained(opts?: { deviceId?: string; timeoutMs?: number }): Promise<void>;
  /** the newest audit rows first */
  audit(opts?: { limit?: number }): Promise<AuditEntry[]>;
  /** the alarms open now, the oldest first (only a leading runtime raises any) */
  alarms(): Alarm[];
  on<K extends keyof RuntimeEvents>(event: K, listener: (e: RuntimeEvents[K]) => void): void;
  off<K extends keyof RuntimeEvents>(event: K, listener: (e: RuntimeEvents[K]) => void): void;
  once<K extends keyof RuntimeEvents>(event: K): Promise<RuntimeEvents[K]>;
}
