import pino, { type Logger } from 'pino';

/** The operational log (start, reload, errors): JSON lines on stderr, apart from the access log on stdout. */
export function createLogger(level: string): Logger {
  return pino({ level, base: null }, pino.destination({ dest: 2, sync: true }));
}
