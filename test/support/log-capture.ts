// A pino logger that keeps every line in memory, with no redaction of its own (as a host's might be).
import { pino, type Logger } from 'pino';

export function captureLogs(level = 'debug'): { logger: Logger; text(): string; records(): Array<Record<string, unknown>> } {
  const lines: string[] = [];
  const logger = pino({ level }, { write: (s: string) => void lines.push(s) });
  return { logger, text: () => lines.join(''), records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
