/**
 * The agent's heartbeat: every `intervalMs` it tells the runtime it is alive (sealed with its key;
 * the beat it carries is what a lease grant answers, lease.ts), and it checks its right to hold
 * its queue: it gives the queue back when its lease lapsed more than `releaseAfterMs` ago, or when
 * it held messages without a lease for twice that (chosen, then passed over before any grant
 * reached it: its messages can then move on). Each heartbeat also carries the agent's device lines
 * that do not flow (retrying, paused or blocked, `lanes`), absent when all flow, and `leaving` once
 * the agent was told to stop (the runtime hands the active agent's stream over before it goes).
 */
import { hostname } from 'node:os';
import type { Broker, Clock } from '../ports.ts';
import type { HeartbeatEvent, LaneReport } from '../side-channel.ts';
import { seal } from '../trust.ts';
import type { Lease } from './lease.ts';

export interface HeartbeatOptions {
  agentId: string;
  agentKey: Buffer;
  broker: Pick<Broker, 'publishEvent'>;
  clock: Clock;
  lease: Pick<Lease, 'beat' | 'current' | 'lapsedFor' | 'incarnation'>;
  intervalMs: number;
  releaseAfterMs: number;
  /** deliveries the lanes hold */
  holding(): number;
  /** the device lines that do not flow (DeviceLanes.reports) */
  lanes(): LaneReport[];
  /** false once the agent stopped: the heartbeat stops with it */
  running(): boolean;
  /** true once the agent was told to stop and asks for a planned handover */
  leaving?(): boolean;
  giveBack(why: string): void;
}

/** Sends the first heartbeat now and the next every `intervalMs` while the agent runs. */
export function startHeartbeat(o: HeartbeatOptions): void {
  const beat: HeartbeatEvent = { type: 'heartbeat', agentId: o.agentId, host: hostname(), pid: process.pid, sentAt: 0, beat: 0, incarnation: o.lease.incarnation };
  const unleased = unleasedHold(o);
  const heartbeat = () => {
    if (!o.running()) return;
    const now = o.clock.monotonic();
    const lanes = o.lanes();
    const event: HeartbeatEvent = { ...beat, sentAt: o.clock.now(), beat: o.lease.beat(), ...(lanes.length > 0 ? { lanes } : {}), ...(o.leaving?.() ? { leaving: true as const } : {}) };
    void o.broker.publishEvent('heartbeats', seal(o.agentKey, 'heartbeats', o.agentId, event));
    const heldFor = unleased(now);
    if (o.lease.lapsedFor() > o.releaseAfterMs) o.giveBack(`lease lapsed ${Math.round(o.lease.lapsedFor())} ms ago`);
    else if (heldFor !== null && heldFor > o.releaseAfterMs * 2) o.giveBack(`held messages ${Math.round(heldFor)} ms without a lease`);
    o.clock.setTimeout(heartbeat, o.intervalMs);
  };
  heartbeat();
}

/** ms this agent has held messages without a valid lease (it may never have had one), as seen at each heartbeat; null when it does not */
function unleasedHold(o: Pick<HeartbeatOptions, 'lease' | 'holding'>): (now: number) => number | null {
  let since: number | null = null;
  return (now) => {
    since = o.lease.current() === null && o.holding() > 0 ? (since ?? now) : null;
    return since === null ? null : now - since;
  };
}
