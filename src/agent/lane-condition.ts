/**
 * How one device lane stands, as one value: flowing (delivering, or idle), retrying (its message
 * failed transiently and is sent again after a backoff), paused (the runtime's line order pauses
 * it: it holds what arrives and sends nothing) or blocked (held at a seq: the device refused it
 * here under onPermanent=block, or the runtime's order holds it there, or a retry of it is ordered
 * and its delivery has not arrived; line-orders.ts). A paused and blocked lane is blocked. `since`
 * is the agent's wall clock when the condition began; a retrying lane keeps its first `since`
 * across attempts. `laneReports` turns the lanes' conditions into what a heartbeat carries.
 */
import { MAX_LANE_REPORTS, MAX_LANE_TEXT, type LaneReport } from '../side-channel.ts';
import type { Hold, Refusal } from './line-orders.ts';

export type LaneCondition =
  | { state: 'flowing' }
  | { state: 'retrying'; seq: number; attempt: number; reason: string; since: number }
  | { state: 'paused'; since: number }
  | { state: 'blocked'; seq: number; status: number | null; response: string | null; reason: string; since: number };

export const FLOWING: LaneCondition = { state: 'flowing' };

/** The condition of a lane that failed `attempt` times to deliver `seq`: it keeps its `since` while it retries the same seq. */
export function retrying(prev: LaneCondition, seq: number, attempt: number, reason: string, now: number): LaneCondition {
  const since = prev.state === 'retrying' && prev.seq === seq ? prev.since : now;
  return { state: 'retrying', seq, attempt, reason, since };
}

/** What frees a blocked line, in every text that says it is blocked. */
const FREES = (deviceId: string) => `baton unblock ${deviceId} --retry (after fixing the device) or baton unblock ${deviceId} --skip (it stays dead-lettered) frees it`;

/**
 * The condition a lane reports under its hold: blocked while held at a seq, else paused while the
 * order pauses it, else `own` (flowing, or retrying its message). A condition that goes on keeps its `since`.
 */
export function standing(deviceId: string, own: LaneCondition, prev: LaneCondition, hold: Hold, refusal: Refusal | null, now: number): LaneCondition {
  const at = hold.at;
  if (at !== null) {
    // the ordered retry on its way to the device, failing transiently: it is retried like any message
    if (at.by === 'retry' && own.state === 'retrying' && own.seq === at.seq) return own;
    if (at.by === 'refusal' && refusal !== null) return { state: 'blocked', seq: refusal.seq, status: refusal.status, response: refusal.response, reason: refusal.reason, since: refusal.since };
    const since = prev.state === 'blocked' && prev.seq === at.seq ? prev.since : now;
    const reason =
      at.by === 'retry'
        ? `seq ${at.seq}: an operator ordered it sent again (retry ${hold.retry?.n}); it goes first once its delivery arrives, nothing after it is sent until then`
        : `seq ${at.seq} was refused by the device and dead-lettered (by this agent or the one before it); the runtime's line order holds the line there: nothing after it is sent until ${FREES(deviceId)}`;
    return { state: 'blocked', seq: at.seq, status: null, response: null, reason, since };
  }
  if (hold.paused) return prev.state === 'paused' ? prev : { state: 'paused', since: now };
  return own;
}

/** characters of the device's answer quoted in a blocked lane's reason (the report carries it whole, up to MAX_LANE_TEXT) */
const QUOTED = 120;

/** The reason a lane is blocked: the seq, what the device said, where the message went, what frees the line. */
export function blockedReason(deviceId: string, seq: number, outcome: { reason: string; response: string | null }, recorded: boolean): string {
  const answer = (outcome.response ?? '').replace(/\s+/g, ' ').trim();
  const quoted = answer === '' ? '' : ` (${JSON.stringify(answer.length > QUOTED ? `${answer.slice(0, QUOTED)}…` : answer)})`;
  const where = recorded ? 'it is dead-lettered' : 'its dead letter could not be recorded, so it went back to the queue (it waits here with the line)';
  return `seq ${seq} rejected: ${outcome.reason}${quoted}; ${where}. This line sends nothing after it (onPermanent=block) until ${FREES(deviceId)}`;
}

const cut = (s: string) => s.slice(0, MAX_LANE_TEXT);

/** What a paused lane holds back: the lowest seq (0: none) and how many. */
export type HeldBack = { seq: number; count: number };

/** The lanes that do not flow, blocked first, then retrying, then paused, the oldest first in each; at most MAX_LANE_REPORTS, texts cut to MAX_LANE_TEXT. */
export function laneReports(lanes: Iterable<{ deviceId: string; condition: LaneCondition; held?: () => HeldBack }>): LaneReport[] {
  const reports: LaneReport[] = [];
  for (const { deviceId, condition: c, held } of lanes) {
    if (c.state === 'retrying') reports.push({ deviceId, state: 'retrying', seq: c.seq, attempt: c.attempt, reason: cut(c.reason), since: c.since });
    else if (c.state === 'blocked') {
      reports.push({ deviceId, state: 'blocked', seq: c.seq, status: c.status, response: c.response === null ? null : cut(c.response), reason: cut(c.reason), since: c.since });
    } else if (c.state === 'paused') {
      const h = held?.() ?? { seq: 0, count: 0 };
      const reason = `the runtime's line order pauses this line: it holds ${h.count} message(s) and sends nothing until baton resume ${deviceId}`;
      reports.push({ deviceId, state: 'paused', seq: h.seq, held: h.count, reason: cut(reason), since: c.since });
    }
  }
  const rank = (r: LaneReport) => (r.state === 'blocked' ? 0 : r.state === 'retrying' ? 1 : 2);
  reports.sort((a, b) => rank(a) - rank(b) || a.since - b.since || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  return reports.slice(0, MAX_LANE_REPORTS);
}
