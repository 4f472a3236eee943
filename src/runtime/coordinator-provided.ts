/**
 * The coordinator's actors and guards, built from the ports (machines/coordinator.machine.ts names
 * them): the switch steps (switch-steps.ts), the release request of a planned handover
 * (release-request.ts) and the guard that asks the registry whether an agent is dead.
 */
import { createActor, type Actor, type InspectionEvent } from 'xstate';
import { coordinatorMachine, type CoordinatorMachine } from '../../machines/coordinator.machine.ts';
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
};

/** The coordinator actor, its actors and guards provided. */
export function createCoordinator(d: CoordinatorDeps & { checkAgentLoopTime: number; inspect: (e: InspectionEvent) => void }): CoordinatorActor {
  return createActor(coordinatorMachine.provide(coordinatorProvided(d)), {
    input: { checkAgentLoopTime: d.checkAgentLoopTime, releaseTimeout: 2 * d.leaseDuration },
    clock: xstateClock(d.clock),
    systemId: 'coordinator',
    inspect: d.inspect,
  });
}

export function coordinatorProvided(d: CoordinatorDeps) {
  return {
    actors: { ...switchSteps(d), askRelease: askRelease({ ...d, ttlMs: d.leaseDuration }) },
    guards: {
      // a death the coordinator could not act on when it came (it followed, loaded, or switched)
      agentDead: (_: unknown, { agentId }: { agentId: string }) => d.registry.list().some((a) => a.agentId === agentId && a.state === 'dead'),
    },
  };
}
