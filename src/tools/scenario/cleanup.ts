/** Removes everything a scenario made (processes, devices, queues, database), also after a failure or an abort. */
import type { DeviceSimulator } from '../../devices/simulator.ts';
import { deleteNamespace, dropDatabase } from '../admin.ts';
import type { AgentProcesses } from './agent-processes.ts';
import type { RuntimeFleet } from './runtime-fleet.ts';
import type { RunPlace } from './setup.ts';

/** `runtimes` and `agents` are null when the run failed before making them. */
export async function cleanUp(place: RunPlace, made: { runtimes: RuntimeFleet | null; agents: AgentProcesses | null; sims: DeviceSimulator[] }): Promise<void> {
  made.runtimes?.killAll();
  await made.agents?.killAll();
  await Promise.all(made.sims.map((sim) => sim.close()));
  await deleteNamespace(place.amqpUrl, place.namespace, made.agents?.ids() ?? []).catch(() => {});
  await dropDatabase(place.databaseUrl).catch(() => {});
}
