/**
 * More trouble for a planned handover (wide-operator.ts), aimed at its catch-up (the old agent still
 * writes under its renewed lease while the epoch in the database is already raised) and at its
 * release: the leader paused or crashed there (another runtime takes the switch over), the leader's
 * renewals failing as the old agent gives its lease back, the old agent's broker connection dropping,
 * it killed as it gives its queue back, its receipts (its `released` answer among them) nacked, the
 * devices slow or refusing, PostgreSQL slow. Drawn from a random stream of its own (`drawCatchUp`),
 * so that the operator's other draws, and every other fault of a seed, stay what they were.
 */
import type { Assignment } from '../../ports.ts';
import type { SimAgent, SimRuntime, WideDeployment } from './wide-deployment.ts';
import { CATCH_UP_TROUBLES, type CatchUpDraw, type CatchUpTrouble } from './wide-faults.ts';
import { seededRandom } from './world.ts';

/** One draw per operator action of `seed` (`count` of them), from a stream of its own. */
export function drawCatchUp(seed: number, count: number): CatchUpDraw[] {
  const rnd = seededRandom(Math.imul(seed, 0x9e3779b1) ^ 0x0ca7c4a9);
  return Array.from({ length: count }, () => {
    const r = rnd();
    const size = rnd();
    return { kind: r < 0.6 ? CATCH_UP_TROUBLES[Math.floor((r / 0.6) * CATCH_UP_TROUBLES.length)]! : null, size };
  });
}

type Later = (ms: number, fn: () => void) => void;

/** Arms `t` for the planned switch `r` starts next: it strikes during the catch-up (or, by its kind, as the old agent gives its lease back). */
export function armCatchUpTrouble(d: WideDeployment, r: SimRuntime, t: CatchUpDraw, later: Later): void {
  const kind = t.kind;
  if (!kind) return;
  const started = (e: { assignment: Assignment; reason: string }) => {
    if (!e.reason.startsWith('planned handover')) return;
    r.runtime.off('switch.started', started);
    const old = e.assignment.previousAgent ? d.agents.get(e.assignment.previousAgent) : undefined;
    const atRelease = kind === 'flap-at-release' || kind === 'kill-old-at-release';
    if (atRelease) old?.handle?.events.once('releasing', () => strike(d, r, old, kind, t.size, later));
    else d.world.at(d.world.now + Math.floor(t.size * 1200), () => strike(d, r, old, kind, t.size, later));
  };
  r.runtime.on('switch.started', started);
  d.world.at(d.world.now + 3000, () => r.runtime.off('switch.started', started));
}

function strike(d: WideDeployment, r: SimRuntime, old: SimAgent | undefined, kind: CatchUpTrouble, size: number, later: Later): void {
  const live = !r.gate.dead && !r.gate.paused;
  const oldLive = old && !old.gate.dead && !old.gate.paused ? old : undefined;
  switch (kind) {
    case 'pause-leader': {
      if (!live) return;
      // past its leader lease: another runtime leads (if any) while the old agent's renewed lease runs
      const ms = Math.floor(d.leaderTtl * (1 + size * 2));
      d.note(`trouble: the leader ${r.id} is paused mid-catch-up for ${ms} ms`);
      r.gate.pause();
      return later(ms, () => (d.note(`trouble: resume runtime ${r.id}`), r.gate.resume()));
    }
    case 'crash-leader': {
      if (!live) return;
      d.note(`trouble: the leader ${r.id} crashes mid-catch-up`);
      r.gate.kill();
      r.broker.kill();
      r.leading = false;
      return later(500 + Math.floor(size * 2000), () => void d.startRuntime());
    }
    case 'flap-at-release': {
      if (!live) return;
      const ms = Math.floor(300 + size * 3000);
      d.note(`trouble: ${r.id}'s leader renewals fail for ${ms} ms as the old agent gives its lease back`);
      r.faults.add('flap', ms);
      return later(ms + 500, () => {});
    }
    case 'old-agent-drop': {
      if (!oldLive) return;
      const ms = 100 + Math.floor(size * 3000);
      d.note(`trouble: the old agent ${oldLive.id}'s broker connection drops mid-catch-up; back in ${ms} ms`);
      oldLive.broker.drop(ms);
      return later(ms, () => {});
    }
    case 'kill-old-at-release': {
      if (!oldLive) return;
      d.note(`trouble: the old agent ${oldLive.id} dies as it gives its queue back`);
      oldLive.gate.kill();
      oldLive.broker.kill();
      return later(500 + Math.floor(size * 1500), () => void d.startAgent());
    }
    case 'old-receipts-nacked': {
      if (!oldLive) return;
      const ms = 200 + Math.floor(size * 2500);
      d.note(`trouble: the broker nacks the old agent ${oldLive.id}'s receipts for ${ms} ms mid-catch-up`);
      oldLive.broker.nackUntilTime(d.world.now + ms);
      return later(ms, () => {});
    }
    case 'devices-slow':
    case 'devices-refuse': {
      const ms = 1000 + Math.floor(size * 3000);
      d.note(`trouble: every device ${kind === 'devices-slow' ? 'answers in 1-6 s' : 'refuses a third of its writes (422)'} for ${ms} ms mid-catch-up`);
      for (const x of d.devices) {
        if (kind === 'devices-slow') x.slowUntil = Math.max(x.slowUntil, d.world.now + ms);
        else x.rejectsUntil = Math.max(x.rejectsUntil, d.world.now + ms);
      }
      return later(ms + (kind === 'devices-slow' ? 6000 : 0), () => {});
    }
    case 'db-slow': {
      if (!live) return;
      const ms = 200 + Math.floor(size * 2500);
      d.note(`trouble: ${r.id}'s PostgreSQL calls hang for ${ms} ms mid-catch-up`);
      const until = r.faults.add('hang', ms);
      return later(until - d.world.now + 2000, () => {});
    }
  }
}
