/**
 * The errors the runtime answers a host with when it will not take a message, or a message will
 * not be applied: another runtime leads, the runtime is stopping, the device refused it for good.
 * Each says what happened to the message and what to do next.
 */
import { BatonError } from '../errors.ts';

/** This runtime stands by (`leader`: the one that leads as far as it knows). */
export const notLeader = (runtimeId: string, leader: string | null) =>
  new BatonError(
    'not-leader',
    `this runtime (${runtimeId}) is standing by; ${leader ? `runtime ${leader} leads` : 'no runtime leads right now'}: dispatch there (the message was not stored)`,
    { leader },
  );

export const stopped = () => new BatonError('runtime-stopped', 'the runtime is stopping; the message was not stored: dispatch it to a running runtime');

/** The seq was dead-lettered: `applied()` rejects with this. */
export const rejected = (deviceId: string, seq: number, reason?: string) =>
  new BatonError('device-rejected', `device ${deviceId}: seq ${seq} was dead-lettered (${reason ?? 'the reason is in dead_letters'}); it will not be applied`, { deviceId, seq });

/** An operator action asked of a runtime that stands by: `what` says what was not done. */
export const actionNotLeader = (runtimeId: string, leader: string | null, what: string) =>
  new BatonError(
    'not-leader',
    `${what}: this runtime (${runtimeId}) is standing by; ${leader ? `runtime ${leader} leads: ask it` : 'no runtime leads right now: try again once one does'} (baton status shows who leads)`,
    { leader },
  );

/** An operator action or read asked of a runtime that does not run (its database is open only while it runs). */
export const notRunning = (what: string, state: 'created' | 'starting' | 'stopping' | 'stopped') =>
  state === 'created' || state === 'starting'
    ? new BatonError('runtime-not-started', `${what} before start() finished: the database is not open yet; await runtime.start() first`)
    : new BatonError('runtime-stopped', `${what} after stop(): the database is closed; ask a running runtime`);
