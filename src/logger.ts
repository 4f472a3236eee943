/** Logger helpers: silent by default in the library, with secrets redacted wherever pino is used. */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Paths that never reach a log line. */
export const redactPaths = [
  'password',
  '*.password',
  'token',
  '*.token',
  'amqpUrl',
  '*.amqpUrl',
  'databaseUrl',
  '*.databaseUrl',
  'managementUrl',
  '*.managementUrl',
  'headers.authorization',
  // the deployment secret and agent credentials (src/trust.ts), should one ever be passed to a log call
  'secret',
  '*.secret',
  'key',
  '*.key',
  'agentKey',
  '*.agentKey',
  'streamKey',
  '*.streamKey',
];

/** A logger that writes nothing: the library default. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The CLI's logger: pretty on a terminal, JSON otherwise. */
export function cliLogger(level = 'info', name?: string): Logger {
  const pretty = process.stderr.isTTY;
  return pino({
    level,
    name,
    redact: { paths: redactPaths, censor: '***' },
    ...(pretty
      ? { transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } } }
      : {}),
  }, pretty ? undefined : pino.destination(2));
}
