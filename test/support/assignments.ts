// Assignments along one switch from a1 to a2, for the coordinator's machine tests.
import type { Assignment } from '../../machines/coordinator.machine.ts';

export const a1: Assignment = { agentId: 'a1', topic: 'q.a1', epoch: 1, lock: 0, phase: 'normal', switchId: null, previousAgent: null };
export const sw: Assignment = { ...a1, epoch: 2, lock: 1, phase: 'switching', switchId: 'sw1', previousAgent: 'a1' };
export const chosen: Assignment = { ...sw, agentId: 'a2', topic: 'q.a2' };
export const draining: Assignment = { ...chosen, phase: 'draining' };
export const replaying: Assignment = { ...chosen, phase: 'replaying' };
export const done: Assignment = { ...chosen, phase: 'normal', lock: 0 };
