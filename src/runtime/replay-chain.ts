/**
 * The one line replays take turns on: the dispatcher's rounds (every parked row but those of held
 * lines) and the releases of single lines (a line's retried message and its parked rows). Never two
 * at once, so no row is sent twice, and a settle waits for the one running.
 */
export class ReplayChain {
  /** the replay running now (or the last one), settled either way */
  private last: Promise<unknown> = Promise.resolve();

  /** runs `fn` once every replay queued before it has ended */
  run<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.last.then(fn);
    this.last = run.catch(() => {});
    return run;
  }

  /** settles once the replays queued so far have ended */
  idle(): Promise<unknown> {
    return this.last;
  }
}
