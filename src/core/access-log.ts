/** One line per finished request: pino JSON by default, or the Apache/nginx combined format. */
import pino, { type Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Exchange } from './exchange.ts';

export interface AccessLog {
  write(ex: Exchange): void;
  flush(): void;
}

/** Lines are written in batches of this many bytes, so that a busy proxy does not make a syscall per request. */
const BATCH_BYTES = 4096;
/** A partial batch waits no longer than this (nginx's `access_log ... flush=` does the same). */
const FLUSH_INTERVAL_MS = 500;

export function createAccessLog(config: Config['access_log']): AccessLog {
  if (!config.enabled) return { write() {}, flush() {} };
  const destination = pino.destination({
    dest: config.path === 'stdout' ? 1 : config.path,
    sync: false,
    mkdir: true,
    minLength: BATCH_BYTES,
    periodicFlush: FLUSH_INTERVAL_MS,
  });
  if (config.format === 'combined') return new CombinedAccessLog(destination);
  return new JsonAccessLog(pino({ base: null, messageKey: 'msg' }, destination), destination);
}

type Destination = ReturnType<typeof pino.destination>;

class JsonAccessLog implements AccessLog {
  readonly #logger: Logger;
  readonly #destination: Destination;

  constructor(logger: Logger, destination: Destination) {
    this.#logger = logger;
    this.#destination = destination;
  }

  write(ex: Exchange): void {
    this.#logger.info({
      remote: ex.peer,
      method: ex.info.method,
      path: ex.req.url,
      host: ex.info.host,
      status: ex.status,
      bytes: ex.bytes,
      route: ex.route?.name,
      upstream: ex.route?.action.kind === 'forward' ? ex.route.action.upstream.name : undefined,
      server: ex.server?.authority,
      duration_ms: round(performance.now() - ex.startedAt),
      upstream_ms: ex.upstreamHeadersMs < 0 ? undefined : round(ex.upstreamHeadersMs),
      error: ex.errorCode,
    });
  }

  flush(): void {
    flushQuietly(this.#destination);
  }
}

class CombinedAccessLog implements AccessLog {
  readonly #destination: Destination;

  constructor(destination: Destination) {
    this.#destination = destination;
  }

  write(ex: Exchange): void {
    const req = ex.req;
    const referer = req.headers.referer ?? '-';
    const agent = req.headers['user-agent'] ?? '-';
    const line =
      `${ex.peer} - - [${clfDate(new Date())}] "${req.method} ${req.url} HTTP/${req.httpVersion}" ${ex.status} ${ex.bytes} ` +
      `"${escape(referer)}" "${escape(agent)}" ${round(performance.now() - ex.startedAt)}ms ${ex.server?.authority ?? '-'}\n`;
    this.#destination.write(line);
  }

  flush(): void {
    flushQuietly(this.#destination);
  }
}

function flushQuietly(destination: Destination): void {
  try {
    destination.flushSync();
  } catch (error: unknown) {
    // flushSync throws while the stream is still opening (nothing written yet): nothing to lose.
    if (!(error instanceof Error && /not ready/.test(error.message))) throw error;
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function escape(value: string): string {
  return value.replace(/["\\]/g, '\\$&');
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** 10/Oct/2000:13:55:36 +0000 */
function clfDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
