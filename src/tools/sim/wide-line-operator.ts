/**
 * The operator of device lines in the wide simulation, in the seeds that have one (wide-deployment.ts
 * `lineOps`; planned handovers and agent stops are wide-operator.ts's): issue 15's actions on lines
 * at moments the seed draws, also while switches, leadership changes, process pauses and database
 * faults run:
 * - pauses a device and resumes it 0.2-2 s later (some pauses wait for the next switch phase);
 * - makes a device refuse the next new seq until it is fixed (sim-devices.ts `refusing`);
 * - frees each blocked line it sees in the stored orders 0.3-2.5 s later: retry after fixing the
 *   device (two times in three), or skip;
 * - skips a seq it has just retried, in a third of its retries, 0-60 ms after the retried write
 *   reached the device: while its answer or its applied receipt is on the way (issue 15's "skip
 *   while a retry is on the wire": the seq then counts applied if the device applied it);
 * - once the load is over (`finish`), resumes every paused line and frees every blocked one (a seq
 *   retried and refused again is skipped then).
 * It asks a runtime that says it leads; a refusal, or no answer within 3 s, is tried again at its
 * next look (every action is idempotent). It draws only from the deployment's `opsRnd` (and the
 * skips right after a retry from `midRetryRnd`), so the deployment and the faults a seed draws are
 * the same with or without it.
 */
import type { ActionResult, Runtime } from '../../api.ts';
import { blockedSeq, NO_ORDER, pendingRetry } from '../../runtime/line-orders.ts';
import type { LineOrder } from '../../ports.ts';
import type { WideDeployment } from './wide-deployment.ts';

/** how often the operator looks at the lines, ms */
const LOOK_MS = 250;
/** an action unanswered for this long is tried again at the next look, ms */
const ANSWER_MS = 3000;

type Act = 'pause' | 'resume' | 'retry' | 'skip';

interface Decision {
  seq: number;
  how: 'retry' | 'skip';
  /** not before (simulated ms) */
  at: number;
  /** the action was answered done or already: a block seen again at this seq is a new one */
  acted: boolean;
  retried: boolean;
}

export class LineOperator {
  private readonly wantPaused = new Set<string>();
  /** devices with an action in flight */
  private readonly busy = new Set<string>();
  private readonly decisions = new Map<string, Decision>();
  private finishing = false;
  private stopped = false;

  constructor(private readonly d: WideDeployment) {}

  /** Draws the plan over the load's planned duration and starts looking. */
  start(loadStart: number, loadTime: number): void {
    const { d } = this;
    const rnd = d.opsRnd;
    const pick = () => d.devices[Math.floor(rnd() * d.devices.length)]!;
    const pauses = Math.floor(rnd() * 4);
    for (let i = 0; i < pauses; i++) {
      const x = pick();
      const at = loadStart + Math.floor(rnd() * loadTime);
      const ms = 200 + Math.floor(rnd() * 1800);
      const atPhase = rnd() < 0.3;
      d.world.at(at, () => (atPhase ? this.atNextPhase(() => this.pause(x.id, ms)) : this.pause(x.id, ms)));
    }
    const refusals = Math.floor(rnd() * 3);
    for (let i = 0; i < refusals; i++) {
      const x = pick();
      d.world.at(loadStart + Math.floor(rnd() * loadTime), () => {
        if (this.finishing || x.refusing) return;
        x.refuseNext = true;
        d.note(`operator: ${x.id} will refuse its next new seq until it is fixed`);
      });
    }
    this.look();
  }

  /** The load is over: every line is to be released. */
  finish(): void {
    this.finishing = true;
    this.wantPaused.clear();
    for (const x of this.d.devices) x.refuseNext = false;
  }

  stop(): void {
    this.stopped = true;
  }

  private pause(deviceId: string, ms: number): void {
    if (this.finishing) return;
    this.wantPaused.add(deviceId);
    this.d.note(`operator: pause ${deviceId} for ${ms} ms`);
    this.d.world.at(this.d.world.now + ms, () => this.wantPaused.delete(deviceId));
  }

  /** runs `fn` at the next phase of any switch (never, when none comes before the load ends) */
  private atNextPhase(fn: () => void): void {
    const l = () => {
      this.d.phaseListeners.splice(this.d.phaseListeners.indexOf(l), 1);
      fn();
    };
    this.d.phaseListeners.push(l);
  }

  private readonly look = (): void => {
    if (this.stopped) return;
    void this.d.store.lineOrders().then((stored) => {
      const orders = new Map(stored.map((s) => [s.deviceId, s.order]));
      for (const x of this.d.devices) if (!this.busy.has(x.id)) this.consider(x.id, orders.get(x.id) ?? NO_ORDER);
    });
    this.d.world.at(this.d.world.now + LOOK_MS, this.look);
  };

  private consider(deviceId: string, o: LineOrder): void {
    const want = this.wantPaused.has(deviceId);
    if (want !== o.paused) return this.act(deviceId, want ? 'pause' : 'resume');
    const at = blockedSeq(o);
    if (at === null || pendingRetry(o)?.seq === at) return;
    let dec = this.decisions.get(deviceId);
    if (!dec || dec.seq !== at || dec.acted) {
      const rnd = this.d.opsRnd;
      // once the load is over, a seq retried and refused again is skipped: the line must end released
      const again = dec?.seq === at && dec.retried;
      const how = (this.finishing && again) || rnd() >= (this.finishing ? 0.5 : 0.65) ? 'skip' : 'retry';
      dec = { seq: at, how, at: this.d.world.now + (this.finishing ? 0 : 300 + Math.floor(rnd() * 2200)), acted: false, retried: again };
      this.decisions.set(deviceId, dec);
    }
    if (this.d.world.now < dec.at) return;
    if (dec.how === 'retry') {
      // the operator fixes the device before asking for the retry
      const x = this.d.devices.find((y) => y.id === deviceId)!;
      if (x.refusing?.seq === at && !x.refusing.fixed) (x.refusing.fixed = true), this.d.note(`operator: ${deviceId} fixed (it accepts seq ${at} now)`);
    }
    this.act(deviceId, dec.how, dec);
  }

  /** Sometimes skips the seq just retried, while the retry may be on the wire (see the header). */
  private maybeSkipMidRetry(deviceId: string, seq: number): void {
    const rnd = this.d.midRetryRnd;
    if (rnd() >= 1 / 3) return;
    const ms = Math.floor(rnd() * 60);
    const x = this.d.devices.find((y) => y.id === deviceId)!;
    x.onArrival = (s) => {
      if (s !== seq) return;
      x.onArrival = null;
      this.d.world.at(this.d.world.now + ms, () => {
        if (this.busy.has(deviceId) || this.stopped) return;
        this.d.note(`operator: skip ${deviceId} while its retry of seq ${seq} is on the wire`);
        this.act(deviceId, 'skip');
      });
    };
  }

  /** one action through a runtime that says it leads; answered (or given up) within ANSWER_MS */
  private act(deviceId: string, what: Act, dec?: Decision): void {
    const r = this.d.leaders()[0];
    if (!r) return;
    const { world, note } = this.d;
    this.busy.add(deviceId);
    let settled = false;
    const done = (v: ActionResult | (Error & { code?: string }) | null) => {
      if (settled) return;
      settled = true;
      timer.cancel();
      this.busy.delete(deviceId);
      if (v === null) return note(`operator: ${what} ${deviceId} got no answer from ${r.id}`);
      const ok = 'outcome' in v;
      note(`operator: ${what} ${deviceId} on ${r.id}: ${ok ? v.outcome : `${v.code ?? 'error'} (${v.message.slice(0, 120)})`}`);
      if (ok && what === 'pause' && !open()) this.d.pauses.push({ deviceId, from: world.stamp(), to: null });
      if (ok && dec) {
        dec.acted = true;
        dec.retried ||= what === 'retry';
      }
      if (ok && what === 'retry' && v.outcome === 'done') this.maybeSkipMidRetry(deviceId, dec!.seq);
    };
    const timer = world.at(world.now + ANSWER_MS, () => done(null));
    // the checker's pause windows: from the pause the runtime answered until the operator asks to resume
    const open = () => this.d.pauses.find((p) => p.deviceId === deviceId && p.to === null);
    if (what === 'resume') open() && (open()!.to = world.stamp());
    const call = (rt: Runtime): Promise<ActionResult> =>
      what === 'pause' ? rt.pause(deviceId, { by: 'sim:operator' })
      : what === 'resume' ? rt.resume(deviceId, { by: 'sim:operator' })
      : rt.unblock(deviceId, { action: what, by: 'sim:operator' });
    r.gate.run(() =>
      call(r.runtime).then(
        (v) => r.gate.run(() => done(v)),
        (e: Error & { code?: string }) => r.gate.run(() => done(e)),
      ),
    );
  }
}
