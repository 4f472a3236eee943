/**
 * Follows a planned switch of the coordinator to its end, from what it emits: the switch it
 * started for a planned handover (or the one given, already running), whether the old agent gave
 * its lease back or was fenced, and its completion. Rejects when this runtime stops leading before
 * the end (the leading runtime carries the switch on), when the coordinator never started it, or
 * after `timeoutMs` (the switch goes on). Every rejection of a switch that started says so in
 * `details.started`.
 */
import { BatonError } from '../errors.ts';
import type { Clock } from '../ports.ts';
import type { CoordinatorActor } from './coordinator-provided.ts';

export interface SwitchOutcome {
  switchId: string;
  from: string;
  to: string;
  epoch: number;
  /** ms from the switch's start to its completion, as this runtime saw them (null: joined midway) */
  ms: number | null;
  /** the old agent gave its lease back (true), was fenced (false), or this runtime did not see which (null) */
  released: boolean | null;
  /** why it was fenced */
  why: string;
}

type Follow = { coordinator(): Pick<CoordinatorActor, 'on' | 'subscribe' | 'getSnapshot'>; clock: Clock };

export function followPlannedSwitch(d: Follow, o: { switchId: string | null; timeoutMs: number }): Promise<SwitchOutcome> {
  return new Promise<SwitchOutcome>((resolve, reject) => {
    const c = d.coordinator();
    const now = () => d.clock.monotonic();
    const a = c.getSnapshot().context.assignment;
    const s = { switchId: o.switchId, from: o.switchId ? (a?.previousAgent ?? '?') : '?', startedAt: o.switchId ? null : now(), released: null as boolean | null, why: '' };
    const ours = (e: { assignment: { switchId: string | null } }) => s.switchId !== null && e.assignment.switchId === s.switchId;
    const failed = (message: string) => new BatonError(s.switchId ? 'not-leader' : 'no-active-agent', message, { switchId: s.switchId, started: s.switchId !== null });
    const subs = [
      c.on('switch.started', (e) => {
        if (s.switchId !== null || !e.reason.startsWith('planned handover')) return;
        s.switchId = e.assignment.switchId;
        s.from = e.assignment.previousAgent ?? '?';
      }),
      c.on('handover.released', (e) => void (ours(e) && (s.released = true))),
      c.on('handover.fallback', (e) => void (ours(e) && ((s.released = false), (s.why = e.why)))),
      c.on('switch.completed', (e) => {
        if (!ours(e)) return;
        const ms = s.startedAt === null ? null : Math.round(now() - s.startedAt);
        end(null, { switchId: s.switchId!, from: s.from, to: e.assignment.agentId, epoch: e.assignment.epoch, ms, released: s.released, why: s.why });
      }),
      c.subscribe((snap) => {
        if (snap.matches('following') || snap.matches('stopped')) {
          end(failed(s.switchId ? `this runtime stopped leading during the handover (switch ${s.switchId}): the leading runtime carries the switch on (as after a failure); baton status shows it` : 'no handover was started: this runtime stopped leading'));
        } else if (s.switchId === null && snap.matches('loading')) {
          end(failed('no handover was started: another runtime began a switch first; baton status shows it'));
        }
      }),
    ];
    const timer = d.clock.setTimeout(
      () => end(new BatonError('timeout', `the handover did not complete within ${o.timeoutMs} ms${s.switchId ? ` (switch ${s.switchId} goes on: baton status shows its phase)` : ''}`, { switchId: s.switchId, started: s.switchId !== null })),
      o.timeoutMs,
    );
    let ended = false;
    function end(err: Error | null, out?: SwitchOutcome): void {
      if (ended) return;
      ended = true;
      timer.cancel();
      for (const sub of subs) sub.unsubscribe();
      if (err) reject(err);
      else resolve(out!);
    }
  });
}
