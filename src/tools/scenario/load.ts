/**
 * The load of a scenario: messages at the scenario's rate, round-robin over the devices, dispatched
 * per device in order as a host must (a message refused by a dying runtime is sent again before the
 * next one), with the timed steps of the timeline run as they fall due.
 */
import type { ConfigMessage } from '../../wire.ts';
import { workloadMessage } from '../workload.ts';
import type { RuntimeFleet } from './runtime-fleet.ts';
import type { Schedule } from './schedule.ts';
import type { Scenario } from './schema.ts';
import type { Timeline } from './timeline.ts';
import type { RunOptions } from './types.ts';
import { pause } from './wait.ts';

/** the backlog is bounded: the load is paced, not buffered without end */
const MAX_QUEUED = 2000;

export interface LoadResult {
  /** per device, the seqs the runtimes accepted */
  accepted: Map<string, number[]>;
  loadMs: number;
}

/** The k-th message for a device; in the poison shape some are rules (never policies) whose policy does not exist. */
function messageFor(s: Scenario, deviceId: string, k: number): ConfigMessage {
  const poison = s.load.shape === 'poison' && k % s.load.poisonEvery === 1;
  return poison ? { deviceId, method: 'PUT', path: `/policies/missing-${k}/rules/r${k}` } : workloadMessage(deviceId, k);
}

export async function runLoad(c: { s: Scenario; deviceIds: string[]; runtimes: RuntimeFleet; schedule: Schedule; timeline: Timeline; o: RunOptions }): Promise<LoadResult> {
  const { s, deviceIds, o } = c;
  const loadStart = performance.now();
  c.timeline.note('fault', `load: ${s.load.messages} messages at ${s.load.rate}/s`);
  const accepted = new Map<string, number[]>(deviceIds.map((id) => [id, []]));
  const perDevice = new Map<string, number>();
  const chains = new Map<string, Promise<unknown>>(deviceIds.map((id) => [id, Promise.resolve()]));
  let queued = 0;
  for (let i = 0; i < s.load.messages && !o.signal?.aborted; i++) {
    await c.schedule.runDue(i, s.load.messages, performance.now() - loadStart);
    // the pacing of the load (messages per second): a timer by design, not a wait for an event
    const wait = loadStart + (i * 1000) / s.load.rate - performance.now();
    if (wait > 1) await pause(wait);
    const deviceId = deviceIds[i % deviceIds.length]!;
    const k = perDevice.get(deviceId) ?? 0;
    perDevice.set(deviceId, k + 1);
    const msg = messageFor(s, deviceId, k);
    queued++;
    chains.set(deviceId, chains.get(deviceId)!.then(() => c.runtimes.dispatch(msg, o.signal).then((r) => (queued--, r && accepted.get(r.deviceId)!.push(r.seq)))));
    while (queued > MAX_QUEUED) await Promise.race(chains.values());
    if (i % 100 === 0) o.onProgress?.(i / s.load.messages);
  }
  await Promise.all(chains.values());
  o.onProgress?.(1);
  const loadMs = performance.now() - loadStart;
  c.timeline.note('fault', 'load done');
  return { accepted, loadMs };
}
