/**
 * The side-channel events between agents and the runtime: heartbeats and receipts, with their
 * validation. Both travel sealed with the agent's key (src/trust.ts); these are their contents.
 */
import { isId as isAgentId } from './ids.ts';
import type { DeadLetter, LineOrder } from './ports.ts';

export type { LineOrder };

/**
 * No queue name and no time the runtime would act on: the runtime derives the agent's queue from
 * its id and judges liveness by when it received a heartbeat, on its own clock.
 */
export interface HeartbeatEvent {
  type: 'heartbeat';
  agentId: string;
  host: string;
  pid: number;
  /** the agent's wall clock, for display only */
  sentAt: number;
  /** rises with each heartbeat of one agent process: a heartbeat not above the last one heard is a replay. A grant echoes it */
  beat: number;
  /** random per agent process */
  incarnation: string;
  /** the lines of this agent that do not flow (retrying or blocked), at most MAX_LANE_REPORTS; absent: all flow */
  lanes?: LaneReport[];
  /** the agent was told to stop (SIGTERM): while it is the active agent, it asks for a planned handover */
  leaving?: true;
}

/**
 * How one device's line stands in an agent, when it is not flowing freely. `since`: the agent's wall clock, for display.
 * `paused`: the runtime's line order pauses it; `seq` is the first seq it holds back (0: none held), `held` how many it holds.
 */
export type LaneReport =
  | { deviceId: string; state: 'paused'; seq: number; held: number; reason: string; since: number }
  | { deviceId: string; state: 'retrying'; seq: number; attempt: number; reason: string; since: number }
  | { deviceId: string; state: 'blocked'; seq: number; status: number | null; response: string | null; reason: string; since: number };

/** lane reports in one heartbeat, at most (the worst first); texts in them, at most this many characters */
export const MAX_LANE_REPORTS = 256;
export const MAX_LANE_TEXT = 512;

/**
 * Seqs `from`..`to` (inclusive) of a device, every one of them known applied by the reporting agent
 * (see below). `retry`: the one seq of the range (`from` = `to`) was applied as the operator's retry
 * `n` of it (the agent sent it as that retry, and the device applied it); absent in receipts of
 * agents older than it, and for every seq not sent as a retry.
 */
export interface AppliedRange {
  deviceId: string;
  from: number;
  to: number;
  retry?: number;
}

/**
 * Wire format (JSON on the receipts channel, sealed with the agent's key). `epoch` is the lease
 * epoch the agent held when it sent the receipt: the runtime takes it only from the agent that
 * epoch was granted to, and only for seqs it handed out.
 * - `{ type: 'applied', agentId, epoch, ranges: [{ deviceId, from, to }] }`: exactly the seqs the agent
 *   applied since its last receipt, and those it skipped as applied before its epoch began (at or
 *   below the device's or the grant's watermark then), as runs of consecutive seqs; a seq between
 *   two ranges is not reported by it. A seq the agent applied as an operator's retry comes as a
 *   range of its own naming that retry (`retry: n`, as the dead letter of a retry refused again
 *   does): "applied before the epoch" never says a retry went through, this does, also after an
 *   operator skipped the seq while the retry was on the wire (the runtime then counts it applied).
 * - `{ type: 'dead-letter', agentId, epoch, entry, anomaly?, blocked?, retry? }`: one dead letter; `anomaly: true` when the
 *   agent refused to send it (at or below its watermark, never applied), not the device; `blocked: true`
 *   when the agent holds the device's line at this seq (onPermanent=block): the runtime records the block
 *   (a line order, below) so that it outlives the agent, and holds the device's new messages back;
 *   `retry`: the n of the operator's retry this refusal answers (a retry refused again), absent for a
 *   first refusal: a receipt of the first refusal taken late never counts as the retry's.
 * - `{ type: 'released', agentId, epoch, incarnation }`: the answer to a release request (below): the
 *   agent process `incarnation` gave the lease of `epoch` back. Its requests on the wire finished and their receipts went out before this
 *   one, its deliveries went back to its queue unsent, and it takes no grant of `epoch` or below again.
 */
export type ReceiptEvent =
  | { type: 'applied'; agentId: string; epoch: number; ranges: AppliedRange[] }
  | { type: 'dead-letter'; agentId: string; epoch: number; entry: DeadLetter; anomaly: boolean; blocked: boolean; retry: number | null }
  | { type: 'released'; agentId: string; epoch: number; incarnation: string };

/** ranges one applied receipt may carry (an agent flushes every few ms; runs are long) */
export const MAX_RECEIPT_RANGES = 10_000;

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
/** an agent id no agent could be configured with (control characters, spaces, slashes, too long) is refused, not shown */
const BAD_AGENT_ID = 'agentId is not an agent id (a letter or digit, then letters, digits, ".", "_" or "-", at most 64)';
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Returns the heartbeat, or the reason it is not one. */
export function parseHeartbeat(v: unknown): HeartbeatEvent | { invalid: string } {
  const h = v as Partial<HeartbeatEvent> | null;
  if (typeof h !== 'object' || h === null || h.type !== 'heartbeat') return { invalid: 'not a heartbeat' };
  if (!isId(h.agentId)) return { invalid: 'agentId missing' };
  if (!isAgentId(h.agentId)) return { invalid: BAD_AGENT_ID };
  if (!isSeq(h.beat) || !isId(h.incarnation)) return { invalid: 'beat or incarnation missing' };
  const beat: HeartbeatEvent = { type: 'heartbeat', agentId: h.agentId, host: isId(h.host) ? h.host : '?', pid: Number(h.pid) || 0, sentAt: Number(h.sentAt) || 0, beat: h.beat, incarnation: h.incarnation };
  if (h.lanes !== undefined) {
    if (!Array.isArray(h.lanes) || h.lanes.length > MAX_LANE_REPORTS) return { invalid: `lanes is not a list of at most ${MAX_LANE_REPORTS} lane reports` };
    const lanes: LaneReport[] = [];
    for (const l of h.lanes as unknown[]) {
      const r = parseLaneReport(l);
      if (!r) return { invalid: 'a lane report is malformed' };
      lanes.push(r);
    }
    beat.lanes = lanes;
  }
  if (h.leaving === true) beat.leaving = true;
  return beat;
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, MAX_LANE_TEXT) : null);

function parseLaneReport(v: unknown): LaneReport | null {
  const l = v as Record<string, unknown> | null;
  if (typeof l !== 'object' || l === null || !isId(l.deviceId) || (l.deviceId as string).length > 64 || !isSeq(l.seq) || typeof l.reason !== 'string') return null;
  const base = { deviceId: l.deviceId as string, seq: l.seq as number, reason: (l.reason as string).slice(0, MAX_LANE_TEXT), since: Number(l.since) || 0 };
  if (l.state === 'paused' && isSeq(l.held)) return { ...base, state: 'paused', held: l.held as number };
  if (l.state === 'retrying' && isSeq(l.attempt)) return { ...base, state: 'retrying', attempt: l.attempt as number };
  if (l.state === 'blocked') return { ...base, state: 'blocked', status: isSeq(l.status) ? (l.status as number) : null, response: text(l.response) };
  return null;
}

/** Returns the receipt, or the reason it is not one. */
export function parseReceipt(v: unknown): ReceiptEvent | { invalid: string } {
  const r = v as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || !isId(r.agentId)) return { invalid: 'receipt without agentId' };
  if (!isAgentId(r.agentId)) return { invalid: BAD_AGENT_ID };
  if (!isSeq(r.epoch)) return { invalid: 'receipt without the epoch it was sent under' };
  const epoch = r.epoch;
  if (r.type === 'applied') {
    const ranges: AppliedRange[] = [];
    if (Array.isArray(r.ranges)) {
      if (r.ranges.length > MAX_RECEIPT_RANGES) return { invalid: `applied receipt with more than ${MAX_RECEIPT_RANGES} ranges` };
      for (const g of r.ranges as Array<Record<string, unknown>>) {
        if (typeof g !== 'object' || g === null || !isId(g.deviceId) || !isSeq(g.from) || !isSeq(g.to) || g.from < 1 || g.to < g.from) return { invalid: 'applied receipt with a bad range' };
        if (g.retry !== undefined && (!isSeq(g.retry) || g.retry < 1 || g.to !== g.from)) return { invalid: 'applied receipt with a bad retry (a positive n, on a range of one seq)' };
        ranges.push(g.retry === undefined ? { deviceId: g.deviceId, from: g.from, to: g.to } : { deviceId: g.deviceId, from: g.from, to: g.to, retry: g.retry });
      }
    } else return { invalid: 'applied receipt without ranges' };
    return { type: 'applied', agentId: r.agentId, epoch, ranges };
  }
  if (r.type === 'released') return isId(r.incarnation) ? { type: 'released', agentId: r.agentId, epoch, incarnation: r.incarnation } : { invalid: 'released receipt without the agent process it comes from' };
  if (r.type === 'dead-letter') {
    const e = r.entry as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.deviceId !== 'string' || !isSeq(e.seq) || !isSeq(e.epoch) || typeof e.reason !== 'string' || typeof e.payload !== 'string') {
      return { invalid: 'dead-letter receipt with a bad entry' };
    }
    return {
      type: 'dead-letter',
      agentId: r.agentId,
      epoch,
      anomaly: r.anomaly === true,
      blocked: r.blocked === true,
      retry: isSeq(r.retry) ? r.retry : null,
      entry: {
        deviceId: e.deviceId,
        seq: e.seq,
        epoch: e.epoch,
        agentId: r.agentId,
        reason: e.reason.slice(0, 2000),
        status: Number.isSafeInteger(e.status) ? (e.status as number) : null,
        response: typeof e.response === 'string' ? e.response.slice(0, 8192) : null,
        payload: e.payload.slice(0, 2 * 1024 * 1024),
      },
    };
  }
  return { invalid: `unknown receipt type ${JSON.stringify(r.type)}` };
}

/** What the runtime sends on the control channel. */
export interface LeaseGrant {
  type: 'lease';
  agentId: string;
  /** the agent process the grant answers (a restarted agent ignores its predecessor's grants) */
  incarnation: string;
  epoch: number;
  /** the `beat` of the heartbeat this grant answers */
  beat: number;
  durationMs: number;
  /** highest seq known applied, per device */
  watermarks: Record<string, number>;
  /** the runtime's orders for device lines, for each device that has one (absent: none has); at most MAX_LINE_ORDERS */
  lines?: Record<string, LineOrder>;
}


/** line orders one grant may carry (devices with an order: paused, blocked or recently released) */
export const MAX_LINE_ORDERS = 10_000;

function parseLines(v: unknown): Record<string, LineOrder> | null {
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_LINE_ORDERS) return null;
  const out: Record<string, LineOrder> = {};
  for (const [deviceId, o] of entries) {
    const l = o as Record<string, unknown> | null;
    if (typeof l !== 'object' || l === null || typeof l.paused !== 'boolean' || !isSeq(l.releasedThrough)) return null;
    const seqOrNull = (x: unknown) => (x === null || x === undefined ? null : isSeq(x) ? x : undefined);
    const blockedAt = seqOrNull(l.blockedAt);
    const r = l.retry as Record<string, unknown> | null | undefined;
    const retry = r === null || r === undefined ? null : typeof r === 'object' && isSeq(r.seq) && isSeq(r.n) ? { seq: r.seq, n: r.n } : undefined;
    if (blockedAt === undefined || retry === undefined) return null;
    out[deviceId] = { paused: l.paused, blockedAt, retry, releasedThrough: l.releasedThrough };
  }
  return out;
}

export function parseGrant(v: unknown): LeaseGrant | null {
  const g = v as Partial<LeaseGrant> | null;
  if (typeof g !== 'object' || g === null || g.type !== 'lease') return null;
  if (typeof g.agentId !== 'string' || typeof g.incarnation !== 'string') return null;
  if (!Number.isSafeInteger(g.epoch) || !Number.isSafeInteger(g.beat) || typeof g.durationMs !== 'number' || !(g.durationMs >= 0)) return null;
  const watermarks: Record<string, number> = {};
  for (const [k, seq] of Object.entries(g.watermarks ?? {})) if (Number.isSafeInteger(seq)) watermarks[k] = seq as number;
  // a grant whose line orders cannot be read is refused whole: taking its lease without them could send on a paused or blocked line
  const lines = parseLines(g.lines);
  if (lines === null) return null;
  const grant: LeaseGrant = { type: 'lease', agentId: g.agentId, incarnation: g.incarnation, epoch: g.epoch!, beat: g.beat!, durationMs: g.durationMs, watermarks };
  if (Object.keys(lines).length > 0) grant.lines = lines;
  return grant;
}

/**
 * What the runtime sends on the control channel to ask the active agent for its lease back (a planned
 * handover), sealed with that agent's key like a grant. It names the agent process (`incarnation`: the
 * one the lease was granted to) and the epoch it holds; it is repeated until answered (the channel may
 * lose it). The agent gives the queue back and answers with a `released` receipt.
 */
export interface ReleaseRequest {
  type: 'release';
  agentId: string;
  incarnation: string;
  epoch: number;
}

export function parseReleaseRequest(v: unknown): ReleaseRequest | null {
  const r = v as Partial<ReleaseRequest> | null;
  if (typeof r !== 'object' || r === null || r.type !== 'release') return null;
  if (typeof r.agentId !== 'string' || typeof r.incarnation !== 'string' || !isSeq(r.epoch)) return null;
  return { type: 'release', agentId: r.agentId, incarnation: r.incarnation, epoch: r.epoch };
}
