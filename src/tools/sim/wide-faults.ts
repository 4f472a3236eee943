/**
 * The wide fault model: what a seed can throw at a deployment, and how it draws them. Each fault
 * has a time (a share of the load's planned duration), a size (0..1, scales its length), a target
 * (0..1, picks the process where there is a choice) and, optionally, a switch phase: then it waits
 * from its time for the next switch to reach that phase and strikes there.
 */

export type WideFaultKind =
  /** the active agent (or the recorded candidate during a switch) dies; a new agent starts later */
  | 'kill-agent'
  /** that agent is paused (SIGSTOP) for 1-10 s, then resumed */
  | 'stop-agent'
  /** the leading runtime (or, by target, a standby) dies; a new runtime starts later */
  | 'crash-runtime'
  /** the leader and the active agent die together (one host); another runtime starts later, the agent restarts (under its id) only if it was the last */
  | 'crash-host'
  /** the leading runtime (or a standby) is paused for 2-5 s */
  | 'pause-runtime'
  /** the leader's renewals fail for 0.3-3 s */
  | 'leader-flap'
  /** a runtime's PostgreSQL calls fail for 0.5-4 s */
  | 'db-fail'
  /** a runtime's PostgreSQL calls hang for 0.5-5.5 s: answered late, or never */
  | 'db-hang'
  /** a runtime's PostgreSQL writes commit, then the call fails, for 0.3-3 s */
  | 'db-ambiguous'
  /** a runtime's or an agent's broker connection drops; it reconnects after 0.1-5 s */
  | 'broker-drop'
  /** the broker refuses (nacks) a runtime's publishes or an agent's receipts for 0.2-2 s */
  | 'broker-nack'
  /** a device answers half its writes 503 for 1 s */
  | 'device-errors'
  /** a device refuses a third of its writes (422) for 0.3-2 s: dead letters */
  | 'device-rejects'
  /** a device answers after 1-6 s (timeouts past 5 s) for 2-8 s */
  | 'slow-device'
  /** the operator asks the leader for a planned handover (wide-operator.ts: drawn apart, with its trouble) */
  | 'handover'
  /** the operator stops the active agent (SIGTERM), mostly after starting a new one (wide-operator.ts) */
  | 'agent-leave';

/** More trouble for an operator's action, around its catch-up and release (wide-catch-up-trouble.ts strikes it). */
export const CATCH_UP_TROUBLES = ['pause-leader', 'crash-leader', 'flap-at-release', 'old-agent-drop', 'kill-old-at-release', 'old-receipts-nacked', 'devices-slow', 'devices-refuse', 'db-slow'] as const;
export type CatchUpTrouble = (typeof CATCH_UP_TROUBLES)[number];
/** What the catch-up trouble stream draws for one operator action: a trouble (in three of five, else null) and its size. */
export interface CatchUpDraw {
  kind: CatchUpTrouble | null;
  size: number;
}

export type SwitchPhaseName = 'switching' | 'awaiting-candidate' | 'draining' | 'replaying';

export interface WideFault {
  at: number;
  kind: WideFaultKind;
  size: number;
  target?: number;
  when?: SwitchPhaseName;
  /** an operator's action: more trouble for its catch-up and release (wide-catch-up-trouble.ts) */
  catchUp?: CatchUpDraw;
}

const WEIGHTS: Array<[WideFaultKind, number]> = [
  ['kill-agent', 1],
  ['stop-agent', 2],
  ['crash-runtime', 1],
  ['crash-host', 1],
  ['pause-runtime', 1.5],
  ['leader-flap', 1.5],
  ['db-fail', 1],
  ['db-hang', 1],
  ['db-ambiguous', 1],
  ['broker-drop', 1.5],
  ['broker-nack', 0.7],
  ['device-errors', 0.5],
  ['device-rejects', 0.7],
  ['slow-device', 1.2],
];
const TOTAL = WEIGHTS.reduce((t, [, w]) => t + w, 0);
const PHASES: SwitchPhaseName[] = ['switching', 'awaiting-candidate', 'draining', 'replaying'];
/** faults that make sense at a phase of a switch (a process dies, stops or loses a connection there) */
const AT_PHASE = new Set<WideFaultKind>(['kill-agent', 'stop-agent', 'crash-runtime', 'crash-host', 'pause-runtime', 'leader-flap', 'db-fail', 'db-hang', 'db-ambiguous', 'broker-drop']);

/** One to four faults (none in one seed of twelve), spread over the load. */
export function drawWideFaults(rnd: () => number): WideFault[] {
  const r = rnd();
  const count = r < 1 / 12 ? 0 : r < 0.4 ? 1 : r < 0.7 ? 2 : r < 0.9 ? 3 : 4;
  return Array.from({ length: count }, (_, i) => {
    const at = (i + rnd()) / count;
    let pick = rnd() * TOTAL;
    let kind: WideFaultKind = WEIGHTS[0]![0];
    for (const [k, w] of WEIGHTS) {
      if ((pick -= w) < 0) {
        kind = k;
        break;
      }
    }
    const f: WideFault = { at, kind, size: rnd(), target: rnd() };
    const phase = rnd();
    if (AT_PHASE.has(kind) && phase < 0.4) f.when = PHASES[Math.floor(phase * 10) % PHASES.length];
    return f;
  });
}
