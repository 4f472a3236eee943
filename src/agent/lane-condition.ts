/**
 * How one device lane stands, as one value: flowing (delivering, or idle), retrying (its head
 * message failed transiently and is sent again after a backoff) or blocked (its head message was
 * rejected under onPermanent=block: nothing after it is sent until the agent restarts). `since` is
 * the agent's wall clock when the condition began; a retrying lane keeps its first `since` across
 * attempts. `laneReports` turns the lanes' conditions into what a heartbeat carries.
 */
import { MAX_LANE_REPORTS, MAX_LANE_TEXT, type LaneReport } from '../side-channel.ts';

export type LaneCondition =
  | { state: 'flowing' }
  | { state: 'retrying'; seq: number; attempt: number; reason: string; since: number }
  | { state: 'blocked'; seq: number; status: number | null; response: string | null; reason: string; since: number };

export const FLOWING: LaneCondition = { state: 'flowing' };

/** The condition of a lane that failed `attempt` times to deliver `seq`: it keeps its `since` while it retries the same seq. */
export function retrying(prev: LaneCondition, seq: number, attempt: number, reason: string, now: number): LaneCondition {
  const since = prev.state === 'retrying' && prev.seq === seq ? prev.since : now;
  return { state: 'retrying', seq, attempt, reason, since };
}

/** characters of the device's answer quoted in a blocked lane's reason (the report carries it whole, up to MAX_LANE_TEXT) */
const QUOTED = 120;

/** The reason a lane is blocked: the seq, what the device said, where the message went, what frees the line. */
export function blockedReason(seq: number, outcome: { reason: string; response: string | null }, recorded: boolean): string {
  const answer = (outcome.response ?? '').replace(/\s+/g, ' ').trim();
  const quoted = answer === '' ? '' : ` (${JSON.stringify(answer.length > QUOTED ? `${answer.slice(0, QUOTED)}…` : answer)})`;
  const where = recorded ? 'it is dead-lettered' : 'its dead letter could not be recorded, so it went back to the queue (it is sent again once the line is freed)';
  return (
    `seq ${seq} rejected: ${outcome.reason}${quoted}; ${where}. This line sends nothing after it (onPermanent=block) ` +
    'until the agent restarts; run the agent with onPermanent=skip to dead-letter rejected messages and go on'
  );
}

const cut = (s: string) => s.slice(0, MAX_LANE_TEXT);

/** The lanes that do not flow, blocked first, then retrying, the oldest first in each; at most MAX_LANE_REPORTS, texts cut to MAX_LANE_TEXT. */
export function laneReports(lanes: Iterable<{ deviceId: string; condition: LaneCondition }>): LaneReport[] {
  const reports: LaneReport[] = [];
  for (const { deviceId, condition: c } of lanes) {
    if (c.state === 'retrying') reports.push({ deviceId, state: 'retrying', seq: c.seq, attempt: c.attempt, reason: cut(c.reason), since: c.since });
    else if (c.state === 'blocked') {
      reports.push({ deviceId, state: 'blocked', seq: c.seq, status: c.status, response: c.response === null ? null : cut(c.response), reason: cut(c.reason), since: c.since });
    }
  }
  const rank = (r: LaneReport) => (r.state === 'blocked' ? 0 : 1);
  reports.sort((a, b) => rank(a) - rank(b) || a.since - b.since || (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
  return reports.slice(0, MAX_LANE_REPORTS);
}
