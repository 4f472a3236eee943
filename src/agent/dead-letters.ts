/**
 * The lanes' dead letters: each is recorded durably (a receipt, receipts.ts) before its message is
 * acked. One that could not be recorded is left to the broker to redeliver rather than lost, after
 * a backoff that grows while recording keeps failing (a broker hands a requeued message straight
 * back: without one this would spin, and log, at full speed).
 */
import type { Logger } from 'pino';
import { backoff, delay } from '../clock.ts';
import type { Clock, DeadLetter, Delivery } from '../ports.ts';

/** `rejected`: the device refused it; `blocking`: refused, and the lane holds its line at it (onPermanent=block); `anomaly`: the agent refused to send it (see lane-loop.ts). */
export type DeadLetterKind = 'rejected' | 'blocking' | 'anomaly';

export interface DeadLetterOptions {
  agentId: string;
  clock: Clock;
  logger: Logger;
  retryInitialMs: number;
  retryMaxMs: number;
  random?: () => number;
  /** records a dead letter durably (`retry`: the operator's retry it answers); the message is acked only after it resolves */
  deadLetter(entry: DeadLetter, kind: DeadLetterKind, retry?: number | null): Promise<void>;
  /** a dead letter was recorded (and its message acked) */
  recorded(entry: DeadLetter): void;
}

export class DeadLetters {
  /** dead letters that could not be recorded in a row: the backoff before the next requeue */
  private failures = 0;

  constructor(private readonly o: DeadLetterOptions) {}

  /** A message that cannot be read or is not the runtime's: recorded under no device (its seq, forged or 2^53-1, moves no watermark). */
  async raw(d: Delivery, reason: string): Promise<void> {
    await this.record(d, { deviceId: '?', seq: 0, epoch: 0, agentId: this.o.agentId, reason, status: null, response: null, payload: d.raw.toString('utf8').slice(0, 4096) });
  }

  /** Records the entry, then acks its message; true when recorded, false when the message was requeued instead. */
  async record(d: Delivery, entry: DeadLetter, kind: DeadLetterKind = 'rejected', retry: number | null = null): Promise<boolean> {
    try {
      await this.o.deadLetter(entry, kind, retry);
      this.failures = 0;
      d.ack();
      this.o.recorded(entry);
      return true;
    } catch (err) {
      const wait = backoff(++this.failures, this.o.retryInitialMs, this.o.retryMaxMs, this.o.random);
      this.o.logger.error({ deviceId: entry.deviceId, seq: entry.seq, err: (err as Error).message, requeueInMs: wait }, 'could not record a dead letter; the message is requeued');
      await delay(this.o.clock, wait);
      d.nack(true);
      return false;
    }
  }
}
