/**
 * When the steps of a scenario's timeline run: at a share of the load or ms after it began (the load
 * asks `runDue` before each message), or on an event (a switch phase or a device's line blocked, from
 * the runtimes, or the end of the load). A step that fails (an operator action refused) fails the
 * run: the load stops at its next message, and `loadFinished` throws the step's error.
 */
import { once } from 'node:events';
import type { Act } from './faults.ts';
import { cueOf, type Step } from './schema.ts';
import type { Timeline } from './timeline.ts';
import { within } from './wait.ts';

export class Schedule {
  private readonly timed: Step[];
  private readonly onEvents: Array<{ step: Step; ran: Promise<void> }>;
  private markLoadDone!: () => void;
  /** closed when the run ends: a step whose event comes after that does not run */
  private open = true;
  /** the first error a step ended with (an event step's comes at any time, so it is kept until asked) */
  private failure: Error | null = null;
  private readonly loadDone = new Promise<void>((resolve) => (this.markLoadDone = resolve));

  /** Call it as the load begins: the steps that wait for an event listen from now on. */
  constructor(
    steps: readonly Step[],
    private readonly act: Act,
    private readonly timeline: Timeline,
  ) {
    this.timed = steps.filter((x) => !('event' in x.at));
    this.onEvents = steps
      .filter((x) => 'event' in x.at)
      .map((step) => {
        const at = step.at as { event: string; device?: string };
        const cue = at.event === 'load.done' ? this.loadDone : once(timeline.stepEvents, cueOf(at)).then(() => {});
        const ran = cue.then(() => (this.open ? act(step) : undefined));
        ran.catch((err: Error) => (this.failure ??= err)); // kept, not unhandled: it fails the run when asked
        return { step, ran };
      });
  }

  /** Throws the first error a step ended with, if any (also after the load: a step may run while the run settles). */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /** Runs the timed steps due before message `i` of `total`, `elapsedMs` after the load began. */
  async runDue(i: number, total: number, elapsedMs: number): Promise<void> {
    this.throwIfFailed();
    while (this.timed.length > 0) {
      const at = this.timed[0]!.at;
      const due = 'percent' in at ? (i / total) * 100 >= at.percent : 'ms' in at && elapsedMs >= at.ms;
      if (!due) break;
      await this.act(this.timed.shift()!);
    }
  }

  /**
   * The load is through: the `load.done` steps go, the timed steps not yet due run now, then the
   * steps waiting for an event get up to `ms` (the scenario's settleMs) for it; one still waiting
   * then is told on the timeline (it may yet run while the run settles, until `close`). An abort
   * ends the wait.
   */
  async loadFinished(ms: number, signal?: AbortSignal): Promise<void> {
    this.markLoadDone();
    for (const x of this.timed.splice(0)) await this.act(x);
    const ran = new Set<Step>();
    for (const e of this.onEvents) e.ran.then(() => ran.add(e.step), () => {}); // a failed step is thrown below
    const aborted = new Promise<void>((resolve) => (signal?.aborted ? resolve() : signal?.addEventListener('abort', () => resolve(), { once: true })));
    const done = await within(Promise.race([Promise.all(this.onEvents.map((e) => e.ran)), aborted]), ms).catch(() => true);
    this.throwIfFailed();
    if (done) return;
    for (const e of this.onEvents) if (!ran.has(e.step)) this.timeline.note('fault', `${e.step.label} still waits: no ${cueOf(e.step.at as { event: string }).replace(':', ' ')} within ${ms / 1000} s of the load's end`);
  }

  /** The run is over: steps still waiting for their event never run. */
  close(): void {
    this.open = false;
  }
}
