/**
 * What a deterministic simulation run is asked (SimOptions) and what it answers (SimResult), for
 * both fault models (narrow.ts, wide.ts) and their entry (simulation.ts). Types only: the models
 * import these, never each other or the entry.
 */
import type { WideFault } from './wide-faults.ts';

/** Bugs a test can plant to show the simulation finds them (injected through ports, never in the product). */
export type PlantedBug = 'drop-parked-row';

/**
 * One fault: when (a share of the load's duration, 0..1) and what; `size` (0..1) scales its length.
 * The narrow model knows kill-agent, stop-agent, crash-runtime and device-errors (and ignores
 * `target` and `when`); the wide model knows every kind (wide-faults.ts).
 */
export type PlannedFault = WideFault;

/** `narrow`: the original fault model (one runtime, two agents, four fault kinds); `wide`: wide.ts. */
export type SimModel = 'narrow' | 'wide';

export interface SimOptions {
  seed: number;
  /** the fault model (default narrow) */
  model?: SimModel;
  messages?: number;
  devices?: number;
  /** wide model: runtimes from the start (default: 2 or 3, drawn by the seed) */
  runtimes?: number;
  /** wide model: agents from the start (default: 1 to 3, drawn by the seed) */
  agents?: number;
  /** wide model: dispatch() calls in flight per device (default: 1 to 3, drawn by the seed) */
  inFlight?: number;
  /** wide model: the runtimes' leaderTtl (default: 1500 or 3000, drawn by the seed) */
  leaderTtl?: number;
  /** true (default): faults drawn from the seed; false: none; a list: exactly these */
  faults?: boolean | PlannedFault[];
  /** wide model, faults drawn: the operator's planned handovers and agent stops too (default true; drawn apart, wide-operator.ts); false also leaves out the line operator */
  operator?: boolean;
  /** wide model: an operator pauses, resumes and unblocks device lines (default: in three seeds of five, drawn by the seed, unless `operator` is false; wide-line-operator.ts) */
  lineOps?: boolean;
  plant?: PlantedBug;
}

export interface SimResult {
  seed: number;
  ok: boolean;
  violations: string[];
  trace: string[];
  stats: { accepted: number; applied: number; switches: number; simulatedMs: number; planned?: { asked: number; released: number; fallbacks: number } };
}
