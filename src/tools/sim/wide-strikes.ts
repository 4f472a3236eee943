/**
 * How each fault of the wide model (wide-faults.ts) strikes a running deployment: which process
 * or device it hits, what it does to it, for how long, and when it heals (so that liveness is
 * asked only after the last fault healed). One function per family of faults: agents, runtimes,
 * PostgreSQL, the broker, devices.
 */
import type { Assignment } from '../../ports.ts';
import type { SimAgent, SimRuntime, WideDeployment } from './wide-deployment.ts';
import type { WideFault, WideFaultKind } from './wide-faults.ts';
import { agentLeaveFault, handoverFault } from './wide-operator.ts';

/** One fault striking: the deployment, the fault, the assignment of the switch phase it waited for (if any). */
interface Strike {
  d: WideDeployment;
  f: WideFault;
  a: Assignment | null;
  /** the fault heals at simulated time t (or later) */
  healsAt(t: number): void;
  /** runs `fn` in `ms`, when the fault heals */
  later(ms: number, fn: () => void): void;
}

/** Applies one fault now; `a` is the assignment of the switch phase it waited for, if any. */
export type StrikeFn = (f: WideFault, a: Assignment | null) => Promise<void>;

export function makeFaults(d: WideDeployment, healsAt: (t: number) => void): StrikeFn {
  const later = (ms: number, fn: () => void) => (healsAt(d.world.now + ms), d.world.at(d.world.now + ms, fn));
  return async (f, a) => STRIKES[f.kind]({ d, f, a, healsAt, later });
}

const STRIKES: Record<WideFaultKind, (s: Strike) => void | Promise<void>> = {
  'kill-agent': killAgentFault,
  'stop-agent': stopAgentFault,
  'crash-runtime': crashRuntimeFault,
  'crash-host': crashHostFault,
  'pause-runtime': pauseRuntimeFault,
  'leader-flap': storeFault,
  'db-fail': storeFault,
  'db-hang': storeFault,
  'db-ambiguous': storeFault,
  'broker-drop': brokerDropFault,
  'broker-nack': brokerNackFault,
  'device-errors': deviceFault,
  'device-rejects': deviceFault,
  'slow-device': deviceFault,
  handover: handoverFault,
  'agent-leave': agentLeaveFault,
};

/** the active agent, or during a switch the recorded candidate (or, by target, the old agent) */
async function agentVictim(d: WideDeployment, f: WideFault, a: Assignment | null): Promise<SimAgent | undefined> {
  a ??= await d.store.getAssignment();
  let id = a?.agentId;
  if (a && a.lock === 1 && a.previousAgent && a.previousAgent !== a.agentId && (f.target ?? 0) < 0.35) id = a.previousAgent;
  const v = id ? d.agents.get(id) : undefined;
  if (v && !v.gate.dead) return v;
  const live = d.liveAgents();
  return live.length ? live[Math.floor(d.rnd() * live.length)] : undefined;
}

/** the leader, or by target a standby */
function runtimeVictim(d: WideDeployment, f: WideFault): SimRuntime | undefined {
  const live = d.liveRuntimes();
  const standbys = live.filter((r) => !r.leading);
  if ((f.target ?? 0) > 0.75 && standbys.length) return standbys[Math.floor(d.rnd() * standbys.length)];
  return d.leaders()[0] ?? live[0];
}

function killAgent(v: SimAgent): void {
  v.gate.kill();
  v.broker.kill();
}

function killRuntime(r: SimRuntime): void {
  r.gate.kill();
  r.broker.kill();
  r.leading = false;
}

const where = (a: Assignment | null) => (a ? ` (at ${a.phase}, epoch ${a.epoch})` : '');

async function killAgentFault({ d, f, a, later }: Strike): Promise<void> {
  const v = await agentVictim(d, f, a);
  if (!v) return;
  d.note(`fault: kill agent ${v.id}${where(a)}`);
  killAgent(v);
  later(200 + Math.floor(f.size * 2000), () => void d.startAgent());
}

async function stopAgentFault({ d, f, a, later }: Strike): Promise<void> {
  const v = await agentVictim(d, f, a);
  if (!v || v.gate.paused) return;
  const ms = 1000 + Math.floor(f.size * 9000);
  d.note(`fault: stop agent ${v.id} for ${ms} ms${where(a)}`);
  v.gate.pause();
  later(ms, () => (d.note(`fault: resume agent ${v.id}`), v.gate.resume()));
}

function crashRuntimeFault({ d, f, a, later }: Strike): void {
  const r = runtimeVictim(d, f);
  if (!r) return;
  d.note(`fault: crash runtime ${r.id}${r.leading ? ' (leader)' : ''}${where(a)}`);
  killRuntime(r);
  later(100 + Math.floor(f.size * 2000), () => void d.startRuntime());
}

async function crashHostFault({ d, f, a, later }: Strike): Promise<void> {
  const r = d.leaders()[0];
  const v = await agentVictim(d, { ...f, target: 1 }, a);
  if (!r || !v) return;
  d.note(`fault: host crash: runtime ${r.id} (leader) and agent ${v.id} die together${where(a)}`);
  killRuntime(r);
  killAgent(v);
  // another host takes the runtime's place; the agent comes back (under its id) only when
  // it was the last one: its death has to be acted on by the runtime that takes over
  later(1000 + Math.floor(f.size * 3000), () => void d.startRuntime());
  if (d.liveAgents().length === 0) later(1000 + Math.floor(d.rnd() * 3000), () => void d.startAgent(v.id));
}

function pauseRuntimeFault({ d, f, a, later }: Strike): void {
  const r = runtimeVictim(d, f);
  if (!r || r.gate.paused) return;
  const ms = 2000 + Math.floor(f.size * 3000);
  d.note(`fault: pause runtime ${r.id}${r.leading ? ' (leader)' : ''} for ${ms} ms${where(a)}`);
  r.gate.pause();
  later(ms, () => (d.note(`fault: resume runtime ${r.id}`), r.gate.resume()));
}

/** leader-flap, db-fail, db-hang, db-ambiguous: a runtime's PostgreSQL connection, for a while */
function storeFault({ d, f, a, healsAt }: Strike): void {
  const r = f.kind === 'leader-flap' ? d.leaders()[0] : runtimeVictim(d, f);
  if (!r) return;
  const size = f.size;
  const [mode, ms] =
    f.kind === 'leader-flap' ? (['flap', 300 + size * 2700] as const)
    : f.kind === 'db-fail' ? (['fail', 500 + size * 3500] as const)
    : f.kind === 'db-hang' ? (['hang', 500 + size * 5000] as const)
    : (['ambiguous', 300 + size * 2700] as const);
  const until = r.faults.add(mode, Math.floor(ms));
  d.note(`fault: ${r.id}${r.leading ? ' (leader)' : ''}: PostgreSQL ${mode === 'flap' ? 'renewals fail' : mode === 'fail' ? 'calls fail' : mode === 'hang' ? 'calls hang' : 'writes commit, then fail'} for ${Math.floor(ms)} ms${where(a)}`);
  healsAt(until + (mode === 'hang' ? 2000 : 0));
}

async function brokerDropFault({ d, f, a, healsAt }: Strike): Promise<void> {
  const ms = 100 + Math.floor(f.size * 4900);
  if ((f.target ?? 0) < 0.5) {
    const r = d.leaders()[0];
    if (!r) return;
    d.note(`fault: runtime ${r.id}'s broker connection drops; back in ${ms} ms${where(a)}`);
    r.broker.drop(ms);
  } else {
    const v = await agentVictim(d, { ...f, target: 1 }, a);
    if (!v) return;
    d.note(`fault: agent ${v.id}'s broker connection drops; back in ${ms} ms${where(a)}`);
    v.broker.drop(ms);
  }
  healsAt(d.world.now + ms);
}

async function brokerNackFault({ d, f, a, healsAt }: Strike): Promise<void> {
  const ms = 200 + Math.floor(f.size * 1800);
  const r = (f.target ?? 0) < 0.6 ? d.leaders()[0] : undefined;
  const v = r ? undefined : await agentVictim(d, { ...f, target: 1 }, a);
  const who = r ?? v;
  if (!who) return;
  d.note(`fault: the broker nacks ${r ? `runtime ${r.id}'s publishes` : `agent ${v!.id}'s receipts`} for ${ms} ms`);
  who.broker.nackUntilTime(d.world.now + ms);
  healsAt(d.world.now + ms);
}

/** device-errors, device-rejects, slow-device: one device, for a while */
function deviceFault({ d, f, healsAt }: Strike): void {
  const { world, devices } = d;
  const x = devices[Math.floor((f.target ?? f.size) * devices.length) % devices.length]!;
  if (f.kind === 'device-errors') {
    x.errorsUntil = world.now + 1000;
    d.note(`fault: ${x.id} fails half its writes (503) for 1000 ms`);
    healsAt(x.errorsUntil);
  } else if (f.kind === 'device-rejects') {
    const ms = 300 + Math.floor(f.size * 1700);
    x.rejectsUntil = world.now + ms;
    d.note(`fault: ${x.id} refuses a third of its writes (422) for ${ms} ms`);
    healsAt(x.rejectsUntil);
  } else {
    const ms = 2000 + Math.floor(f.size * 6000);
    x.slowUntil = world.now + ms;
    d.note(`fault: ${x.id} answers in 1-6 s for ${ms} ms`);
    healsAt(x.slowUntil + 6000);
  }
}
