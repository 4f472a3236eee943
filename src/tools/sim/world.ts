/**
 * The deterministic simulation's world: one seeded random source, one simulated clock, and
 * "processes" (gates) whose callbacks can be paused (SIGSTOP), resumed, or dropped for good (kill).
 * Every timer of every actor goes through it; between timers all promise work runs to quiescence,
 * so a seed always replays the same interleaving.
 */
import { createHash } from 'node:crypto';
import type { Clock } from '../../ports.ts';

/** The deployment secret of a simulated run: one per seed, the same on every replay of it. */
export const simSecret = (seed: number): string => createHash('sha256').update(`baton-sim-${seed}`).digest('base64url');

/** mulberry32: small, fast, seeded. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A simulated process: what it is called back with is held while it is paused and dropped once it is dead. */
export class Gate {
  paused = false;
  dead = false;
  private held: Array<() => void> = [];

  constructor(readonly name: string) {}

  run = (fn: () => void): void => {
    if (this.dead) return;
    if (this.paused) this.held.push(fn);
    else fn();
  };

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    for (const fn of this.held.splice(0)) this.run(fn);
  }

  kill(): void {
    this.dead = true;
    this.held = [];
  }
}

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

const EPOCH = Date.UTC(2026, 0, 1);

export class World {
  now = 0;
  readonly random: () => number;
  private timers: Timer[] = [];
  private seq = 0;
  private stamps = 0;

  constructor(readonly seed: number) {
    this.random = seededRandom(seed);
  }

  /** The Clock port for a process: its timers fire through its gate. */
  clock(gate: Gate): Clock {
    return {
      now: () => EPOCH + this.now,
      monotonic: () => this.now,
      setTimeout: (fn, ms) => this.at(this.now + Math.max(0, ms), () => gate.run(fn)),
    };
  }

  /** A number that rises with each call: orders what happened within one simulated ms (the checks' records). */
  stamp(): number {
    return ++this.stamps;
  }

  /** Schedules `fn` at simulated time `t` (world events: faults, load). */
  at(t: number, fn: () => void): { cancel(): void } {
    const timer: Timer = { at: t, seq: this.seq++, fn, cancelled: false };
    // keep sorted by (at, seq): insertion from the back, timers are mostly appended
    let i = this.timers.length;
    while (i > 0 && (this.timers[i - 1]!.at > t || (this.timers[i - 1]!.at === t && this.timers[i - 1]!.seq > timer.seq))) i--;
    this.timers.splice(i, 0, timer);
    return { cancel: () => void (timer.cancelled = true) };
  }

  /** Runs every promise continuation that is ready (they all resolve through microtasks here). */
  settle(): Promise<void> {
    return new Promise((resolve) => setImmediate(resolve));
  }

  /**
   * Like `run`, and on timeout time stands at `until` (nothing was due before it), so that a
   * caller looping on a deadline always gets there.
   */
  async runTo(done: () => boolean, until: number): Promise<boolean> {
    const ok = await this.run(done, until);
    if (!ok) this.now = Math.max(this.now, until);
    return ok;
  }

  /** Advances time timer by timer until `done()` or `until` (simulated ms); false on timeout. */
  async run(done: () => boolean, until: number): Promise<boolean> {
    for (;;) {
      await this.settle();
      if (done()) return true;
      const next = this.timers.shift();
      if (!next || next.at > until) {
        if (next) this.timers.unshift(next);
        return false;
      }
      if (next.cancelled) continue;
      this.now = Math.max(this.now, next.at);
      next.fn();
    }
  }
}
