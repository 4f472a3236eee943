/**
 * Runs a scenario: simulated devices, real agent and runtime processes against the real services,
 * a paced load, the timeline of faults; then checks every device's own applied log against what
 * the runtimes accepted, and reports. Everything it made is removed at the end, also on abort.
 */
import type { DeviceSimulator } from '../../devices/simulator.ts';
import { AgentProcesses } from './agent-processes.ts';
import { reportOf } from './checks.ts';
import { cleanUp } from './cleanup.ts';
import { faultActor } from './faults.ts';
import { runLoad } from './load.ts';
import { Recovery } from './recovery.ts';
import { RuntimeFleet } from './runtime-fleet.ts';
import { Schedule } from './schedule.ts';
import { onPermanentOf, type Scenario } from './schema.ts';
import { DeadLetterLog, settle } from './settle.ts';
import { placeOf, preflight } from './setup.ts';
import { startAgents, startDevices, startRuntimes } from './start.ts';
import { narrate, Timeline } from './timeline.ts';
import type { RunOptions, ScenarioReport } from './types.ts';

export type { Check, RunOptions, ScenarioReport, TimelineEntry } from './types.ts';

export async function runScenario(s: Scenario, o: RunOptions): Promise<ScenarioReport> {
  const place = placeOf(s, o);
  const timeline = new Timeline(o.onTimeline);
  const recovery = new Recovery();
  const sims: DeviceSimulator[] = [];
  let agents: AgentProcesses | null = null;
  let runtimes: RuntimeFleet | null = null;
  let schedule: Schedule | null = null;
  await preflight(place, o.logger);
  try {
    const { devices, devicesFile } = await startDevices(s, sims, recovery);
    const onPermanent = onPermanentOf(s);
    agents = new AgentProcesses(place, devicesFile, onPermanent ? ['--on-permanent', onPermanent] : []);
    const inspect = o.inspectPort !== undefined ? { runtimeId: s.runtimes[0]!, port: o.inspectPort, ...(o.onInspector ? { onUrl: o.onInspector } : {}) } : undefined;
    runtimes = new RuntimeFleet({ place, devices, ...(inspect ? { inspect } : {}) });
    narrate(runtimes, timeline);
    recovery.watch(runtimes);
    const dead = new DeadLetterLog(runtimes);

    await startRuntimes(s, runtimes);
    await startAgents(s, agents, runtimes, timeline, o.signal);
    schedule = new Schedule(s.timeline, faultActor({ timeline, agents, runtimes, sims, recovery }), timeline);
    const { accepted, loadMs } = await runLoad({ s, deviceIds: devices.map((d) => d.id), runtimes, schedule, timeline, o });
    await schedule.loadFinished(s.settleMs, o.signal);
    const { deadLetters, switches } = await settle({ devices, accepted, dead, databaseUrl: place.databaseUrl, settleMs: s.settleMs, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
    schedule.throwIfFailed(); // a step that ran while the run settled

    return reportOf(s, { devices, accepted, deadLetters, switches, loadMs, killToResumeMs: recovery.killToResumeMs(), aborted: o.signal?.aborted ?? false, t0: timeline.t0, timeline: timeline.entries });
  } finally {
    schedule?.close();
    await cleanUp(place, { runtimes, agents, sims });
  }
}
