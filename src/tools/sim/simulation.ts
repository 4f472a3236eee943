/**
 * One deterministic simulation run: the real runtime, actors, machines and agents over the
 * in-memory Broker and Store, simulated devices and a simulated clock, all driven from one seeded
 * world; the invariants of DESIGN.md §8 are checked from the devices' own applied logs. This entry
 * only picks the fault model: narrow.ts (one runtime, two agents, four fault kinds) by default,
 * wide.ts for `model: 'wide'` (more processes, many more faults, liveness after healing).
 */
import { simulateNarrow } from './narrow.ts';
import type { SimOptions, SimResult } from './types.ts';
import { simulateWide } from './wide.ts';

export type { PlannedFault, PlantedBug, SimModel, SimOptions, SimResult } from './types.ts';
export type { WideFaultKind } from './wide-faults.ts';

export async function simulate(o: SimOptions): Promise<SimResult> {
  return o.model === 'wide' ? simulateWide(o) : simulateNarrow(o);
}
