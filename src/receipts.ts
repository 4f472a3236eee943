/** The side-channel events between agents and the runtime: heartbeats and receipts, with their validation. */
import { isId as isAgentId } from './config.ts';
import type { DeadLetter } from './ports.ts';

export interface HeartbeatEvent {
  type: 'heartbeat';
  agentId: string;
  topic: string;
  host: string;
  pid: number;
  sentAt: number;
  /** the agent's monotonic clock when it sent this heartbeat (echoed by lease grants) */
  mono: number;
  /** random per agent process */
  incarnation: string;
}

/** Seqs `from`..`to` (inclusive) of a device, every one of them known applied by the reporting agent (see below). */
export interface AppliedRange {
  deviceId: string;
  from: number;
  to: number;
}

/**
 * Wire format (JSON on the receipts channel):
 * - `{ type: 'applied', agentId, ranges: [{ deviceId, from, to }] }`: exactly the seqs the agent
 *   applied since its last receipt, and those it skipped as applied before its epoch began (at or
 *   below the device's or the grant's watermark then), as runs of consecutive seqs; a seq between
 *   two ranges is not reported by it. An older agent's `marks: [{ deviceId, seq }]` is read as the single seqs named.
 * - `{ type: 'dead-letter', agentId, entry, anomaly? }`: one dead letter; `anomaly: true` when the
 *   agent refused to send it (at or below its watermark, never applied), not the device.
 */
export type ReceiptEvent =
  | { type: 'applied'; agentId: string; ranges: AppliedRange[] }
  | { type: 'dead-letter'; agentId: string; entry: DeadLetter; anomaly: boolean };

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
  if (!isId(h.agentId) || !isId(h.topic)) return { invalid: 'agentId or topic missing' };
  if (!isAgentId(h.agentId)) return { invalid: BAD_AGENT_ID };
  if (typeof h.mono !== 'number' || !isId(h.incarnation)) return { invalid: 'mono or incarnation missing' };
  return { type: 'heartbeat', agentId: h.agentId, topic: h.topic, host: isId(h.host) ? h.host : '?', pid: Number(h.pid) || 0, sentAt: Number(h.sentAt) || 0, mono: h.mono, incarnation: h.incarnation };
}

/** Returns the receipt, or the reason it is not one. */
export function parseReceipt(v: unknown): ReceiptEvent | { invalid: string } {
  const r = v as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || !isId(r.agentId)) return { invalid: 'receipt without agentId' };
  if (!isAgentId(r.agentId)) return { invalid: BAD_AGENT_ID };
  if (r.type === 'applied') {
    const ranges: AppliedRange[] = [];
    if (Array.isArray(r.ranges)) {
      if (r.ranges.length > MAX_RECEIPT_RANGES) return { invalid: `applied receipt with more than ${MAX_RECEIPT_RANGES} ranges` };
      for (const g of r.ranges as Array<Record<string, unknown>>) {
        if (typeof g !== 'object' || g === null || !isId(g.deviceId) || !isSeq(g.from) || !isSeq(g.to) || g.from < 1 || g.to < g.from) return { invalid: 'applied receipt with a bad range' };
        ranges.push({ deviceId: g.deviceId, from: g.from, to: g.to });
      }
    } else if (Array.isArray(r.marks)) {
      // an agent of the previous version: each mark names its own seq, and only that seq counts
      if (r.marks.length > MAX_RECEIPT_RANGES) return { invalid: `applied receipt with more than ${MAX_RECEIPT_RANGES} marks` };
      for (const m of r.marks as Array<Record<string, unknown>>) {
        if (typeof m !== 'object' || m === null || !isId(m.deviceId) || !isSeq(m.seq) || m.seq < 1) return { invalid: 'applied receipt with a bad mark' };
        ranges.push({ deviceId: m.deviceId, from: m.seq, to: m.seq });
      }
    } else return { invalid: 'applied receipt without ranges' };
    return { type: 'applied', agentId: r.agentId, ranges };
  }
  if (r.type === 'dead-letter') {
    const e = r.entry as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.deviceId !== 'string' || !isSeq(e.seq) || !isSeq(e.epoch) || typeof e.reason !== 'string' || typeof e.payload !== 'string') {
      return { invalid: 'dead-letter receipt with a bad entry' };
    }
    return {
      type: 'dead-letter',
      agentId: r.agentId,
      anomaly: r.anomaly === true,
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
