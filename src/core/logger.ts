import pino, { type Logger } from 'pino';

/**
 * The operational log (start, reload, errors): JSON lines on stderr, apart from the access log on
 * stdout. The time is ISO 8601 with milliseconds, as in the JSON access log, so both read alike.
 */
export function createLogger(level: string): Logger {
  return pino({ level, base: null, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 2, sync: true }));
}
