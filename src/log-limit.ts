/** Warnings about refused input, at most one per kind every 10 s (with a count): a flood of forged messages must not become a flood of log lines. */
import type { Logger } from 'pino';
import type { Clock } from './ports.ts';

const EVERY_MS = 10_000;

export function limitedWarn(clock: Clock, log: Pick<Logger, 'warn'>): (kind: string, fields: Record<string, unknown>, msg: string) => void {
  const kinds = new Map<string, { count: number; next: number }>();
  return (kind, fields, msg) => {
    const now = clock.monotonic();
    let k = kinds.get(kind);
    if (!k) kinds.set(kind, (k = { count: 0, next: -Infinity }));
    k.count++;
    if (now < k.next) return;
    log.warn({ ...fields, refusedSinceLastLog: k.count }, msg);
    k.count = 0;
    k.next = now + EVERY_MS;
  };
}
