/**
 * Starting a scenario's cast: the simulated devices, the runtimes (the first leads before the next
 * starts), the first agent (which becomes active), then the others, heard by every runtime before
 * the load begins. Each wait ends on the event a runtime forwards, or fails naming it.
 */
import { startDeviceSimulator, type DeviceSimulator } from '../../devices/simulator.ts';
import { writeDevicesFile } from '../processes.ts';
import type { AgentProcesses } from './agent-processes.ts';
import type { Recovery } from './recovery.ts';
import type { RuntimeFleet } from './runtime-fleet.ts';
import type { Scenario } from './schema.ts';
import type { Timeline } from './timeline.ts';

/** a runtime on a fresh database wins the election as it starts; the lease lasts 3 s */
const FIRST_LEADS_MS = 15_000;
/** an agent process starts and heartbeats within a few seconds */
const ACTIVE_MS = 30_000;
const HEARD_MS = 30_000;

export interface ScenarioDevice {
  id: string;
  url: string;
  fencesByEpoch: boolean;
  sim: DeviceSimulator;
}

/** Starts the devices (each one pushed to `sims` as it starts, for the clean-up); `recovery` hears what they apply. */
export async function startDevices(s: Scenario, sims: DeviceSimulator[], recovery: Recovery): Promise<{ devices: ScenarioDevice[]; devicesFile: string }> {
  for (let i = 0; i < s.devices.count; i++) {
    const sim = await startDeviceSimulator({ faults: { latencyMs: s.devices.latencyMs, errorRate: s.devices.errorRate } });
    sim.events.on('applied', (e: { epoch: number | null }) => recovery.applied(e.epoch));
    sims.push(sim);
  }
  const devices = sims.map((sim, i) => ({ id: `fw${i + 1}`, url: sim.url, fencesByEpoch: s.devices.fencesByEpoch, sim }));
  return { devices, devicesFile: writeDevicesFile(devices.map(({ id, url, fencesByEpoch }) => ({ id, url, fencesByEpoch }))) };
}

/** The runtimes in order; the first must lead (`leader.won`) before the next starts, so it is the leader. */
export async function startRuntimes(s: Scenario, runtimes: RuntimeFleet): Promise<void> {
  for (const id of s.runtimes) {
    await runtimes.start(id);
    if (id === s.runtimes[0]) await runtimes.untilLeads(id, FIRST_LEADS_MS);
  }
}

/**
 * The first agent, until the leader makes it active (`coordinator.active`); then the others, until
 * every runtime has heard every agent (`agent.registered`), so whichever runtime leads when a fault
 * strikes knows the candidates. Returns early when the run is aborted.
 */
export async function startAgents(s: Scenario, agents: AgentProcesses, runtimes: RuntimeFleet, timeline: Timeline, signal?: AbortSignal): Promise<void> {
  const [first, ...others] = s.agents;
  const child = agents.start(first!);
  const exitedFirst = child.exited.then((code) => {
    throw new Error(`agent ${first} exited (${code}) before any agent became active: ${child.stderr().slice(-2000)}`);
  });
  exitedFirst.catch(() => {}); // a later exit (a fault, the clean-up) is no error
  if (!(await Promise.race([runtimes.untilActive(ACTIVE_MS, signal), exitedFirst]))) return;
  timeline.note('agent', `${runtimes.activeAgent} active`);
  for (const id of others) agents.start(id);
  if (others.length > 0) await runtimes.untilHeard(s.agents, HEARD_MS, signal);
}
