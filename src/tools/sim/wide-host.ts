/**
 * The host of the wide simulation, the load: per device, messages 0..n-1, up to `inFlight`
 * dispatch() calls at once, every 150 ms, each to any runtime that says it leads. A refusal (or
 * baton's "cannot tell") is sent again; a call unanswered for HOST_TIMEOUT_MS is in doubt and sent
 * again. Every call and its outcome is recorded for the checker (wide-check.ts).
 */
import { workloadMessage } from '../workload.ts';
import type { HostCall } from './wide-check.ts';
import type { SimRuntime, WideDeployment } from './wide-deployment.ts';

/** a host gives up waiting for dispatch() after this long and sends the message again (elsewhere) */
const HOST_TIMEOUT_MS = 3000;
/** each tick sends up to `inFlight` calls per device at once (they overlap), every PACE ms */
const PACE = 150;

interface DeviceLoad {
  /** messages (k) still to send, the next first */
  todo: number[];
  outstanding: number;
  /** messages accepted */
  done: Set<number>;
}

type Answer = { seq: number } | { code?: string; message: string };

export class WideHost {
  readonly perDevice: number;
  /** the load's planned duration (simulated ms) */
  readonly loadTime: number;
  readonly loadStart: number;
  /** when the last message was accepted (-1: not yet) */
  loadEnd = -1;
  private stopped = false;
  private readonly load: Map<string, DeviceLoad>;

  /** Starts the load now; every call is recorded in `calls`. */
  constructor(
    private readonly d: WideDeployment,
    messages: number,
    readonly calls: HostCall[],
  ) {
    this.perDevice = Math.ceil(messages / d.devices.length);
    this.loadTime = Math.ceil(this.perDevice / d.inFlight) * PACE;
    this.load = new Map(d.devices.map((x) => [x.id, { todo: Array.from({ length: this.perDevice }, (_, k) => k), outstanding: 0, done: new Set<number>() }]));
    this.loadStart = d.world.now;
    d.world.at(d.world.now, this.tick);
  }

  /** every message of every device accepted */
  loadDone(): boolean {
    return this.d.devices.every((x) => this.load.get(x.id)!.done.size === this.perDevice);
  }

  /** messages not accepted yet */
  missing(): number {
    return this.d.devices.reduce((t, x) => t + this.perDevice - this.load.get(x.id)!.done.size, 0);
  }

  /** No more calls (calls in flight still record their outcome). */
  stop(): void {
    this.stopped = true;
  }

  private readonly tick = (): void => {
    const { d } = this;
    if (this.stopped || this.loadDone()) return;
    for (const x of d.devices) {
      const h = this.load.get(x.id)!;
      while (h.outstanding < d.inFlight && h.todo.length > 0) {
        const k = h.todo[0]!;
        if (h.done.has(k)) {
          h.todo.shift();
          continue;
        }
        const ls = d.leaders();
        if (ls.length === 0) break;
        h.todo.shift();
        this.dispatchCall(x.id, k, ls[Math.floor(d.rnd() * ls.length)]!);
      }
    }
    d.world.at(d.world.now + PACE, this.tick);
  };

  private dispatchCall(deviceId: string, k: number, r: SimRuntime): void {
    const { world } = this.d;
    const h = this.load.get(deviceId)!;
    const c: HostCall = { id: this.calls.length, deviceId, k, runtime: r.id, at: world.now, outcome: 'pending' };
    this.calls.push(c);
    h.outstanding++;
    const m = workloadMessage(deviceId, k);
    const msg = { ...m, body: { ...(m.body as object), call: c.id } };
    const timer = world.at(world.now + HOST_TIMEOUT_MS, () => {
      if (c.outcome !== 'pending') return;
      c.outcome = 'in-doubt';
      h.outstanding--;
      h.todo.unshift(k);
    });
    const answered = (ok: boolean, v: Answer) => {
      if (c.outcome === 'accepted' || c.outcome === 'refused' || c.outcome === 'unknown') return;
      timer.cancel();
      this.answered(c, h, ok, v);
    };
    r.gate.run(() =>
      r.runtime.dispatch(msg).then(
        (v) => r.gate.run(() => answered(true, v)),
        (e: Error & { code?: string }) => r.gate.run(() => answered(false, e)),
      ),
    );
  }

  /** A call's first answer (or its answer after it was given up as in doubt). */
  private answered(c: HostCall, h: DeviceLoad, ok: boolean, v: Answer): void {
    const pending = c.outcome === 'pending';
    if (pending) h.outstanding--;
    if (ok) {
      c.outcome = 'accepted';
      c.seq = (v as { seq: number }).seq;
      c.acceptedStamp = this.d.world.stamp();
      h.done.add(c.k);
      if (this.loadEnd < 0 && this.loadDone()) this.loadEnd = this.d.world.now;
    } else if ((v as { details?: { outcome?: string } }).details?.outcome === 'unknown') {
      // baton says it cannot tell: the host sends it again, and either copy may be applied
      c.outcome = 'unknown';
      if (pending) h.todo.unshift(c.k);
    } else {
      c.outcome = 'refused';
      c.error = (v as { code?: string }).code ?? (v as Error).message;
      if (pending) h.todo.unshift(c.k);
    }
  }
}
