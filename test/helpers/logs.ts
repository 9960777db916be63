/** A logger whose lines a test reads: pino's JSON lines, parsed, kept in order. */
import { Writable } from 'node:stream';
import pino, { type Logger, type LoggerOptions } from 'pino';

/** One log line as pino wrote it (level, msg and the line's own fields). */
export type LogLine = Record<string, unknown>;

/** A pino logger with `options` (its level, `base: null`...) writing into `lines`. */
export function collectingLogger(options: LoggerOptions): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as LogLine);
      callback();
    },
  });
  return { logger: pino(options, sink), lines };
}
