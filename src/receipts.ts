/** The side-channel events between agents and the runtime: heartbeats and receipts, with their validation. */
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

export type ReceiptEvent =
  | { type: 'applied'; agentId: string; marks: Array<{ deviceId: string; seq: number }> }
  | { type: 'dead-letter'; agentId: string; entry: DeadLetter };

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isSeq = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** Returns the heartbeat, or the reason it is not one. */
export function parseHeartbeat(v: unknown): HeartbeatEvent | { invalid: string } {
  const h = v as Partial<HeartbeatEvent> | null;
  if (typeof h !== 'object' || h === null || h.type !== 'heartbeat') return { invalid: 'not a heartbeat' };
  if (!isId(h.agentId) || !isId(h.topic)) return { invalid: 'agentId or topic missing' };
  if (typeof h.mono !== 'number' || !isId(h.incarnation)) return { invalid: 'mono or incarnation missing' };
  return { type: 'heartbeat', agentId: h.agentId, topic: h.topic, host: isId(h.host) ? h.host : '?', pid: Number(h.pid) || 0, sentAt: Number(h.sentAt) || 0, mono: h.mono, incarnation: h.incarnation };
}

/** Returns the receipt, or the reason it is not one. */
export function parseReceipt(v: unknown): ReceiptEvent | { invalid: string } {
  const r = v as Record<string, unknown> | null;
  if (typeof r !== 'object' || r === null || !isId(r.agentId)) return { invalid: 'receipt without agentId' };
  if (r.type === 'applied') {
    if (!Array.isArray(r.marks) || r.marks.length > 100_000) return { invalid: 'applied receipt without marks' };
    for (const m of r.marks as Array<Record<string, unknown>>) {
      if (typeof m !== 'object' || m === null || !isId(m.deviceId) || !isSeq(m.seq)) return { invalid: 'applied receipt with a bad mark' };
    }
    return { type: 'applied', agentId: r.agentId, marks: r.marks as Array<{ deviceId: string; seq: number }> };
  }
  if (r.type === 'dead-letter') {
    const e = r.entry as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.deviceId !== 'string' || !isSeq(e.seq) || !isSeq(e.epoch) || typeof e.reason !== 'string' || typeof e.payload !== 'string') {
      return { invalid: 'dead-letter receipt with a bad entry' };
    }
    return {
      type: 'dead-letter',
      agentId: r.agentId,
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
