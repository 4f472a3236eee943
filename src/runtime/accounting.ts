/**
 * The runtime's accounting of each seq and `applied()`: a seq is outstanding from the moment it goes
 * out, settled when a receipt names it (applied or dead-lettered), withdrawn when dispatch() rejects
 * it after all. The ledger (applied-ledger.ts) keeps the facts; this part settles the waiters of
 * `applied()` as the ledger learns, and publishes each device's watermark (metrics, the store).
 */
import type { Clock } from '../ports.ts';
import { BatonError } from '../errors.ts';
import type { AppliedLedger } from './applied-ledger.ts';
import type { Metrics } from './metrics.ts';
import { rejected } from './refusals.ts';
import type { WatermarkWriter } from './watermarks.ts';

interface AppliedWaiter {
  seq: number;
  resolve(): void;
  reject(e: Error): void;
}

export class AppliedAccounting {
  private readonly appliedWaiters = new Map<string, Set<AppliedWaiter>>();

  constructor(
    private readonly d: {
      ledger: AppliedLedger;
      metrics: Metrics;
      marks: Pick<WatermarkWriter, 'raise'>;
      clock: Clock;
      /** when the device's line is held at or below `seq` (blocked, retrying): what `applied()` times out with instead */
      heldLine?(deviceId: string, seq: number, timeoutMs: number): { text: string; details: Record<string, unknown> } | null;
      /** after each accounting of a device: `drained()` waiters look again (drained.ts) */
      accounted?(deviceId: string): void;
    },
  ) {}

  /** settles the waiters of a device whose seq the ledger now knows, and refreshes its watermark */
  readonly accountFor = (deviceId: string) => {
    const { ledger, metrics } = this.d;
    for (const w of this.appliedWaiters.get(deviceId) ?? []) {
      if (ledger.isDeadLettered(deviceId, w.seq)) {
        this.appliedWaiters.get(deviceId)!.delete(w);
        w.reject(rejected(deviceId, w.seq));
      } else if (ledger.isApplied(deviceId, w.seq)) {
        this.appliedWaiters.get(deviceId)!.delete(w);
        w.resolve();
      }
    }
    const wm = ledger.watermark(deviceId);
    metrics.setDevice(deviceId, wm, ledger.lag(deviceId));
    this.d.marks.raise(deviceId, wm);
    this.d.accounted?.(deviceId);
  };

  // a seq is outstanding from the moment it goes out, before its confirm: its receipt may come first
  readonly outstanding = (deviceId: string, seq: number) => {
    this.d.ledger.dispatched(deviceId, seq, this.d.clock.monotonic());
    this.d.metrics.setDevice(deviceId, this.d.ledger.watermark(deviceId), this.d.ledger.lag(deviceId));
  };

  /** not accepted after all (dispatch() rejects): no longer waited for */
  readonly withdrawn = (deviceId: string, seq: number) => {
    this.d.ledger.withdraw(deviceId, seq);
    this.accountFor(deviceId);
  };

  /** A dead letter of `seq` arrived: whoever waits for it learns why it will not be applied. */
  deadLettered(deviceId: string, seq: number, reason: string): void {
    for (const w of this.appliedWaiters.get(deviceId) ?? []) {
      if (w.seq !== seq) continue;
      this.appliedWaiters.get(deviceId)!.delete(w);
      w.reject(rejected(deviceId, seq, reason));
    }
  }

  /** `Runtime.applied()`; `signal`: stops waiting (rejects with its reason) when it aborts */
  readonly applied = ({ deviceId, seq }: { deviceId: string; seq: number }, { timeoutMs = 30_000, signal }: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<void> => {
    const { ledger, clock } = this.d;
    if (ledger.isDeadLettered(deviceId, seq)) return Promise.reject(rejected(deviceId, seq));
    if (ledger.isApplied(deviceId, seq)) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const forget = () => {
        this.appliedWaiters.get(deviceId)?.delete(w);
        signal?.removeEventListener('abort', aborted);
      };
      const timer = clock.setTimeout(() => {
        forget();
        const held = this.d.heldLine?.(deviceId, seq, timeoutMs) ?? null;
        const text = held?.text ?? `device ${deviceId} has not reported seq ${seq} applied within ${timeoutMs} ms; it stays queued and will be delivered (see baton status)`;
        reject(new BatonError('timeout', text, { deviceId, seq, ...held?.details }));
      }, timeoutMs);
      const aborted = () => (forget(), timer.cancel(), reject(signal!.reason));
      const w: AppliedWaiter = { seq, resolve: () => (forget(), timer.cancel(), resolve()), reject: (e) => (forget(), timer.cancel(), reject(e)) };
      signal?.addEventListener('abort', aborted, { once: true });
      if (!this.appliedWaiters.has(deviceId)) this.appliedWaiters.set(deviceId, new Set());
      this.appliedWaiters.get(deviceId)!.add(w);
    });
  };
}
