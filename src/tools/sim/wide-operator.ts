/**
 * The operator of the wide simulation: planned handovers (`runtime.handover()` on the leader) and
 * agents told to stop (SIGTERM: `AgentHandle.leave()`), at random moments of the load, among the
 * faults. They are drawn from a random stream of their own, so that a seed's other faults (and a
 * regression seed's whole trace, when the operator is off) stay what they were.
 *
 * A planned handover may come with trouble, by its size: the old agent paused while it catches up
 * (writes what it was sent) or as it gives its queue back, its
 * release request lost on the way, the new agent dying as the queue moves, or the leader's renewals
 * failing (a leadership flap). What a planned handover must then still hold (no write of the old
 * agent under the epoch it gave back) is checked in wide-check.ts.
 */
import type { Assignment } from '../../ports.ts';
import type { SimAgent, SimRuntime, WideDeployment } from './wide-deployment.ts';
import type { WideFault } from './wide-faults.ts';
import { armCatchUpTrouble, drawCatchUp } from './wide-catch-up-trouble.ts';
import { seededRandom } from './world.ts';

/** The operator's actions of a seed: none in two seeds of five, else one or two. */
export function drawOperator(seed: number): WideFault[] {
  const rnd = seededRandom(seed ^ 0x0b5e55ed);
  const r = rnd();
  const count = r < 0.4 ? 0 : r < 0.8 ? 1 : 2;
  const catchUp = drawCatchUp(seed, count);
  return Array.from({ length: count }, (_, i) => ({ at: (i + rnd()) / count, kind: rnd() < 0.65 ? 'handover' : 'agent-leave', size: rnd(), target: rnd(), catchUp: catchUp[i] }) as WideFault);
}

interface Strike {
  d: WideDeployment;
  f: WideFault;
  /** runs `fn` in `ms`, when the fault heals */
  later(ms: number, fn: () => void): void;
}

/** `handover`: the leader is asked for a planned handover, to a named idle agent or to any. */
export async function handoverFault({ d, f, later }: Strike): Promise<void> {
  const r = d.leaders()[0];
  if (!r) return void d.note('operator: no runtime leads: no handover asked');
  const a = await d.store.getAssignment();
  const idle = d.liveAgents().filter((x) => x.id !== a?.agentId);
  const target = f.target ?? 0;
  const to = target < 0.5 && idle.length ? idle[Math.floor(target * 2 * idle.length)]!.id : undefined;
  d.planned.asked++;
  d.note(`operator: planned handover asked of ${r.id}${to ? ` to ${to}` : ''}`);
  troubleFor(d, r, f, later);
  if (f.catchUp) armCatchUpTrouble(d, r, f.catchUp, later);
  r.runtime.handover({ ...(to ? { to } : {}), by: 'sim' }).then(
    (x) => d.note(`operator: handover ${x.outcome}: ${x.detail}`),
    // a switch id ends in random bytes: the trace keeps its epoch only (a seed replays the same trace)
    (e: { code?: string; message: string }) => d.note(`operator: handover refused or failed (${e.code}): ${e.message.replace(/\bsw-(\d+)-[0-9a-f]+/g, 'sw-$1')}`),
  );
  later(3000, () => {});
}

/** What goes wrong during this planned handover (by its size), once its switch starts. */
function troubleFor(d: WideDeployment, r: SimRuntime, f: WideFault, later: Strike['later']): void {
  const size = f.size;
  if (size >= 0.55) return;
  const started = (e: { assignment: Assignment; reason: string }) => {
    if (!e.reason.startsWith('planned handover')) return;
    r.runtime.off('switch.started', started);
    const old = e.assignment.previousAgent ? d.agents.get(e.assignment.previousAgent) : undefined;
    if (size < 0.2 && old && !old.gate.dead && !old.gate.paused) {
      const ms = 1000 + Math.floor(size * 15_000);
      const pause = (when: string) => {
        if (old.gate.dead || old.gate.paused) return;
        d.note(`trouble: the old agent ${old.id} is paused ${when} for ${ms} ms`);
        old.gate.pause();
        later(ms, () => (d.note(`trouble: resume agent ${old.id}`), old.gate.resume()));
      };
      // while it writes what it was sent (the catch-up), or as it starts giving its queue back
      if (size < 0.1) pause('mid-catch-up');
      else old.handle?.events.once('releasing', () => pause('mid-give-back'));
    } else if (size < 0.35) {
      const ms = 300 + Math.floor((size - 0.2) * 6000);
      d.note(`trouble: ${r.id}'s control events (release requests, grants) are lost for ${ms} ms`);
      r.broker.loseControlUntilTime(d.world.now + ms);
      later(ms, () => {});
    } else if (size < 0.45) {
      newAgentDies(d, e.assignment.switchId, later);
    } else {
      const ms = Math.floor(300 + (size - 0.45) * 20_000);
      d.note(`trouble: ${r.id}'s leader renewals fail for ${ms} ms`);
      later(ms + 500, () => {});
      r.faults.add('flap', ms);
    }
  };
  r.runtime.on('switch.started', started);
  // a handover refused (or another switch first) leaves no trouble armed past its moment
  d.world.at(d.world.now + 3000, () => r.runtime.off('switch.started', started));
}

/** The new agent of this switch dies as its queue moves; another agent starts later. */
function newAgentDies(d: WideDeployment, switchId: string | null, later: Strike['later']): void {
  const l = (phase: string, a: Assignment) => {
    if (phase !== 'draining' || a.switchId !== switchId) return;
    d.phaseListeners.splice(d.phaseListeners.indexOf(l), 1);
    const v = d.agents.get(a.agentId);
    if (!v || v.gate.dead) return;
    d.note(`trouble: the new agent ${v.id} dies as the queue moves to it`);
    v.gate.kill();
    v.broker.kill();
    later(500, () => void d.startAgent());
  };
  d.phaseListeners.push(l);
}

/**
 * `agent-leave`: the active agent is told to stop (SIGTERM). Mostly as in a rolling upgrade: a new
 * agent starts first and the old one leaves a second later; else (by target) with no other agent
 * started for it. Once it stopped, its process is gone; an agent starts later when none is left.
 */
export async function agentLeaveFault({ d, f, later }: Strike): Promise<void> {
  const a = await d.store.getAssignment();
  const v = a ? d.agents.get(a.agentId) : undefined;
  if (!v || v.gate.dead || v.gate.paused || !v.handle) return;
  const rolling = (f.target ?? 0) >= 0.3;
  if (rolling) {
    d.note(`operator: rolling upgrade: a new agent starts, then ${v.id} is told to stop`);
    await d.startAgent();
    d.world.at(d.world.now + 1000, () => leave(d, v, later, f));
  } else {
    d.note(`operator: the active agent ${v.id} is told to stop`);
    leave(d, v, later, f);
  }
  later(8000, () => {});
}

function leave(d: WideDeployment, v: SimAgent, later: Strike['later'], f: WideFault): void {
  if (v.gate.dead || !v.handle) return;
  const r = d.leaders()[0];
  if (r && f.catchUp) armCatchUpTrouble(d, r, f.catchUp, later);
  v.handle.leave().then(
    (how) => {
      d.note(`operator: agent ${v.id} stopped (${how})`);
      v.gate.kill();
      v.broker.kill();
      if (d.liveAgents().length === 0) later(1000, () => void d.startAgent());
    },
    (e: Error) => d.note(`operator: agent ${v.id} could not stop: ${e.message}`),
  );
}
