/**
 * The per-device view (`runtime.devices()`): how each configured device's line stands, from the
 * runtime's line orders (paused, blocked: they stand whatever agent serves the device, also a new
 * one after a failover that never saw the refusal), the active agent's lane reports (its
 * heartbeats), the ledger (watermark, lag, age of the oldest unapplied seq) and what this runtime
 * heard (dead letters, the last failure, the last applied). Also the words `applied()` times out
 * with when the message waits behind a held line, saying what frees it.
 */
import type { DeviceState, DeviceView } from '../api.ts';
import type { Clock, DeviceStream, StoredLineOrder } from '../ports.ts';
import type { LaneReport } from '../side-channel.ts';
import type { AgentRegistry } from './agent-registry.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import { blockedSeq, NO_ORDER, pendingRetry, type LineOrders } from './line-orders.ts';
import type { SeqAllocator } from './seq-allocator.ts';

interface Note {
  deadLetters: number;
  lastError: DeviceView['lastError'];
  lastAppliedAt: number | null;
}

/** What this runtime heard of each configured device: dead letters, the newest failure, the last applied receipt. */
export class DeviceNotes {
  private readonly notes = new Map<string, Note>();

  constructor(private readonly d: { clock: Clock; deviceSet: ReadonlySet<string> }) {}

  /** a receipt named seqs of this device applied */
  applied(deviceId: string): void {
    const n = this.note(deviceId);
    if (n) n.lastAppliedAt = this.d.clock.now();
  }

  deadLettered(deviceId: string, seq: number, reason: string): void {
    const n = this.note(deviceId);
    if (!n) return;
    n.deadLetters++;
    n.lastError = { seq, text: `seq ${seq} dead-lettered: ${reason}`, at: this.d.clock.now() };
  }

  /** the lane reports of a heartbeat: a refusal or a retry not heard before becomes the device's last error */
  heard(lanes: readonly LaneReport[] | undefined): void {
    for (const l of lanes ?? []) {
      const n = this.note(l.deviceId);
      const text = laneText(l);
      if (n && (n.lastError?.seq !== l.seq || n.lastError.text !== text)) n.lastError = { seq: l.seq, text, at: this.d.clock.now() };
    }
  }

  of(deviceId: string): Note {
    return this.notes.get(deviceId) ?? { deadLetters: 0, lastError: null, lastAppliedAt: null };
  }

  /** only configured devices are noted: what an agent reports cannot grow this map */
  private note(deviceId: string): Note | null {
    if (!this.d.deviceSet.has(deviceId)) return null;
    let n = this.notes.get(deviceId);
    if (!n) this.notes.set(deviceId, (n = { deadLetters: 0, lastError: null, lastAppliedAt: null }));
    return n;
  }
}

const laneText = (l: LaneReport): string =>
  l.state === 'blocked'
    ? `seq ${l.seq} refused${l.status !== null ? ` (status ${l.status})` : ''}: ${l.reason}`
    : l.state === 'retrying'
      ? `seq ${l.seq} retried (attempt ${l.attempt}): ${l.reason}`
      : `paused: ${l.reason}`;

export interface DeviceViewDeps {
  devices: readonly string[];
  clock: Clock;
  ledger: Pick<AppliedLedger, 'watermark' | 'lag' | 'oldestOutstanding'>;
  registry: Pick<AgentRegistry, 'lanes'>;
  notes: Pick<DeviceNotes, 'of'>;
  /** the agent in use (null: none) */
  activeAgent(): string | null;
  /** the stored streams (the next seq not reserved yet), or none when the runtime does not run */
  streams(): Promise<DeviceStream[]>;
  /** the next seq from the block in hand, if any */
  seqs: Pick<SeqAllocator, 'peek'>;
  /** parked messages per device, or none when the runtime does not run */
  parked(): Promise<Record<string, number>>;
  /** the runtime's line orders (none: no line is held by an order) */
  lines?: Pick<LineOrders, 'stored'>;
}

/** How the device's line stands by its order and its lane report: the block (seq and the device's answer), or null. */
export function blockOf(lane: LaneReport | null, s: StoredLineOrder | null): DeviceView['blocked'] {
  const o = s?.order ?? NO_ORDER;
  // a report of a block an order released already is an agent that has not taken the order yet
  if (lane?.state === 'blocked' && lane.seq > o.releasedThrough) return { seq: lane.seq, status: lane.status, response: lane.response, reason: lane.reason, since: lane.since };
  const at = blockedSeq(o);
  if (at === null || pendingRetry(o)?.seq === at) return null;
  return { seq: at, status: null, response: null, reason: s!.note, since: s!.at };
}

/** How the active agent reported the device's line at its newest heartbeat (null: it flows, or no agent is in use). */
export function laneOf(d: Pick<DeviceViewDeps, 'registry' | 'activeAgent'>, deviceId: string): LaneReport | null {
  const agentId = d.activeAgent();
  return agentId === null ? null : (d.registry.lanes(agentId).find((l) => l.deviceId === deviceId) ?? null);
}

/** blocked (by its order or as reported), paused (by its order), retrying as reported; otherwise flowing while anything is outstanding, idle when nothing is. */
export function deviceState(lane: LaneReport | null, lag: number | null, s: StoredLineOrder | null = null): DeviceState {
  if (blockOf(lane, s)) return 'blocked';
  if (s?.order.paused) return 'paused';
  if (lane?.state === 'blocked' || lane?.state === 'paused') return lag ? 'flowing' : 'idle';
  return lane ? lane.state : lag ? 'flowing' : 'idle';
}

/** `runtime.devices()` */
export function deviceViews(d: DeviceViewDeps): () => Promise<DeviceView[]> {
  return async () => {
    const [stored, parked] = await Promise.all([d.streams(), d.parked()]);
    const streams = new Map(stored.map((s) => [s.deviceId, s]));
    const now = d.clock.monotonic();
    const agentId = d.activeAgent();
    return d.devices.map((deviceId): DeviceView => {
      const lane = laneOf(d, deviceId);
      const lag = d.ledger.lag(deviceId);
      const oldest = d.ledger.oldestOutstanding(deviceId);
      const { deadLetters, lastError, lastAppliedAt } = d.notes.of(deviceId);
      const order = d.lines?.stored(deviceId) ?? null;
      return {
        deviceId,
        state: deviceState(lane, lag, order),
        blocked: blockOf(lane, order),
        retrying: lane?.state === 'retrying' ? { seq: lane.seq, attempt: lane.attempt, reason: lane.reason, since: lane.since } : null,
        nextSeq: d.seqs.peek(deviceId) ?? streams.get(deviceId)?.nextSeq ?? null,
        watermark: d.ledger.watermark(deviceId),
        lag,
        oldestUnappliedMs: oldest === null ? null : Math.max(0, now - oldest),
        parked: parked[deviceId] ?? 0,
        deadLetters,
        lastError,
        lastAppliedAt,
        agentId,
      };
    });
  };
}

const when = (ms: number) => (ms > 0 ? ` since ${new Date(ms).toISOString()}` : '');

/**
 * Why `applied()` of `seq` timed out, when the device's line is held at or below it: blocked (which
 * seq, what the device said), paused, or retrying on the active agent; and what frees it. Null: the
 * line is not held there.
 */
export function heldLineText(lane: LaneReport | null, agentId: string | null, deviceId: string, seq: number, timeoutMs: number, s: StoredLineOrder | null = null): string | null {
  const head = `device ${deviceId} has not reported seq ${seq} applied within ${timeoutMs} ms`;
  const agent = agentId ? `agent ${agentId}` : 'the active agent';
  const block = blockOf(lane, s);
  if (block && block.seq <= seq) {
    const self = block.seq === seq ? ' (this message)' : `; seq ${seq} stays queued behind it`;
    const answer = `${block.status !== null ? `status ${block.status}` : 'no status'}${block.response ? `, answer ${JSON.stringify(block.response)}` : ''}`;
    return `${head}: its line is blocked at seq ${block.seq}${self}: the device refused it (${answer}: ${block.reason})${when(block.since)}, ` +
      `and the line is held there (onPermanent=block); nothing after seq ${block.seq} is delivered until it is freed. ` +
      `To free it: fix the device, then baton unblock ${deviceId} --retry sends seq ${block.seq} again first; or baton unblock ${deviceId} --skip leaves it dead-lettered and goes on ` +
      '(dispatch that change again once the device accepts it). See baton devices';
  }
  if (s?.order.paused) {
    return `${head}: device ${deviceId} is paused (by ${s.by}${when(s.at)}): its messages are kept, none is sent; seq ${seq} is delivered once it is resumed: baton resume ${deviceId}`;
  }
  if (lane?.state === 'retrying' && lane.seq <= seq) {
    return `${head}: ${agent} is retrying seq ${lane.seq}${lane.seq === seq ? ' (this message)' : ''} on it (attempt ${lane.attempt}: ${lane.reason})${when(lane.since)}` +
      `${lane.seq === seq ? '' : `; seq ${seq} stays queued behind it`} and will be delivered once seq ${lane.seq} goes through (see baton devices)`;
  }
  return null;
}

/** What `applied()` says when it times out behind a held line: the text and its details, or null. */
export function heldLineOf(d: Pick<DeviceViewDeps, 'registry' | 'activeAgent' | 'lines'>) {
  return (deviceId: string, seq: number, timeoutMs: number) => {
    const lane = laneOf(d, deviceId);
    const order = d.lines?.stored(deviceId) ?? null;
    const text = heldLineText(lane, d.activeAgent(), deviceId, seq, timeoutMs, order);
    if (!text) return null;
    const block = blockOf(lane, order);
    const line = block && block.seq <= seq ? 'blocked' : order?.order.paused ? 'paused' : (lane?.state ?? 'retrying');
    return { text, details: { line, heldAt: block?.seq ?? lane?.seq ?? null, agentId: d.activeAgent() } };
  };
}
