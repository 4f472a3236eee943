/**
 * The watermarks the runtime learnt, written to `device_streams` in batches: each raise is queued,
 * and a periodic flush writes every device raised since the last one in one call. A failed write
 * puts its marks back for the next flush.
 */
import type { Logger } from 'pino';
import type { DeliveryStore } from '../ports.ts';
import type { Emit } from './events.ts';

export class WatermarkWriter {
  /** watermarks not yet written to device_streams */
  private readonly pendingMarks = new Map<string, number>();
  /** the highest watermark queued for writing, per device */
  private readonly queuedMarks = new Map<string, number>();

  constructor(private readonly d: { store: Pick<DeliveryStore, 'advanceWatermarks'>; emit: Emit; log: Logger }) {}

  /** The device's watermark is now `wm`: queued when it is above the last one queued. */
  raise(deviceId: string, wm: number): void {
    if (wm > (this.queuedMarks.get(deviceId) ?? 0)) {
      this.queuedMarks.set(deviceId, wm);
      this.pendingMarks.set(deviceId, wm);
    }
  }

  readonly flush = async () => {
    const { pendingMarks } = this;
    if (pendingMarks.size === 0) return;
    const batch = [...pendingMarks].map(([deviceId, seq]) => ({ deviceId, seq }));
    pendingMarks.clear();
    await this.d.store.advanceWatermarks(batch).then(
      () => this.d.emit('watermarks.stored', { marks: batch }),
      (err) => {
        // put them back: the next flush tries again
        for (const m of batch) pendingMarks.set(m.deviceId, Math.max(m.seq, pendingMarks.get(m.deviceId) ?? 0));
        this.d.log.warn({ err: (err as Error).message }, 'could not store watermarks; will retry');
      },
    );
  };
}
