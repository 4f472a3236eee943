/**
 * The coordinator's actors and guards, built from the ports (machines/coordinator.machine.ts names
 * them): the switch steps (switch-steps.ts), the release request of a planned handover
 * (release-request.ts) and the guard that asks the registry whether an agent is dead. A leader
 * term loads what comes before its assignment (`beforeLoad`: the line orders) first: the assignment
 * loaded leads to the term's first grant and first send.
 */
import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import { coordinatorMachine, type Assignment, type CoordinatorMachine } from '../../machines/coordinator.machine.ts';
import { BatonError } from '../errors.ts';
import type { LeaderTerm } from '../ports.ts';
import { xstateClock, type AgentRegistry } from './agent-registry.ts';
import { askRelease, type ReleaseRequestDeps } from './release-request.ts';
import { switchSteps, type SwitchStepDeps } from './switch-steps.ts';

export type CoordinatorActor = Actor<CoordinatorMachine>;

export type CoordinatorDeps = SwitchStepDeps & {
  registry: Pick<AgentRegistry, 'list' | 'incarnation'>;
  granter: ReleaseRequestDeps['granter'];
  keyOf: ReleaseRequestDeps['keyOf'];
  /** the lease duration: a release request's time to live; the old agent has two to answer it */
  leaseDuration: number;
  /** what a leader term loads before its assignment (the line orders) */
  beforeLoad?: (term: LeaderTerm) => Promise<void>;
  /** a planned handover's catch-up: resolves once the old agent wrote what it was sent (catch-up.ts); at once when absent */
  caughtUp?: (signal: AbortSignal) => Promise<void>;
};

/** The coordinator actor, its actors and guards provided. */
export function createCoordinator(d: CoordinatorDeps & { checkAgentLoopTime: number; inspect: (e: InspectionEvent) => void }): CoordinatorActor {
  return createActor(coordinatorMachine.provide(coordinatorProvided(d)), {
    input: { checkAgentLoopTime: d.checkAgentLoopTime, releaseTimeout: 2 * d.leaseDuration, catchUpTimeout: d.leaseDuration },
    clock: xstateClock(d.clock),
    systemId: 'coordinator',
    inspect: d.inspect,
  });
}

export function coordinatorProvided(d: CoordinatorDeps) {
  return {
    actors: {
      ...switchSteps(d),
      askRelease: askRelease({ ...d, ttlMs: d.leaseDuration }),
      awaitCaughtUp: fromPromise<void, { assignment: Assignment }>(({ signal }) => d.caughtUp?.(signal) ?? Promise.resolve()),
      loadAssignment: loadAssignment(d),
    },
    guards: {
      // a death the coordinator could not act on when it came (it followed, loaded, or switched)
      agentDead: (_: unknown, { agentId }: { agentId: string }) => d.registry.list().some((a) => a.agentId === agentId && a.state === 'dead'),
    },
  };
}

function loadAssignment(d: CoordinatorDeps) {
  return fromPromise<Assignment | null, void>(async () => {
    if (d.beforeLoad) {
      const term = d.term();
      if (!term) throw new BatonError('not-leader', 'this runtime stopped leading before it loaded its assignment: the leading runtime carries on');
      await d.beforeLoad(term);
    }
    return d.store().getAssignment();
  });
}
