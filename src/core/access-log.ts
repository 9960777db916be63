/** One line per finished request: JSON by default, the Apache/nginx combined format, or combined extended with host, route and timings. */
import type { Config } from '../config/schema.ts';
import type { Route } from '../routing/router.ts';
import type { Exchange } from './exchange.ts';
import { LineBuffer } from './line-buffer.ts';
import { LogWriter } from './log-writer.ts';

export interface AccessLog {
  write(ex: Exchange): void;
  /** Writes out everything pending, synchronously (at shutdown). */
  flush(): void;
  /** Flushes, then closes the file (not stdout): when a reload opens the log again, and at stop. */
  close(): void;
}

/**
 * The log all listeners write to. A reload that changes `access_log` swaps what is behind it, so
 * that requests still running on a listener the reload removed write to the new log, never to
 * the closed file of the old one.
 */
export class SwitchableAccessLog implements AccessLog {
  #current: AccessLog;

  constructor(initial: AccessLog) {
    this.#current = initial;
  }

  write(ex: Exchange): void {
    this.#current.write(ex);
  }

  flush(): void {
    this.#current.flush();
  }

  close(): void {
    this.#current.close();
  }

  /** Puts `next` in place and closes the previous log. */
  replace(next: AccessLog): void {
    const previous = this.#current;
    this.#current = next;
    previous.close();
  }
}

/** Opens the log (throws when its file cannot be opened); `onError` hears of failed writes. */
export function createAccessLog(config: Config['access_log'], onError: (error: Error) => void): AccessLog {
  if (!config.enabled) return { write() {}, flush() {}, close() {} };
  return new BatchedAccessLog(new LogWriter(config.path, onError), FORMATS[config.format]);
}

/** Appends one line (ASCII, ending in a newline) for a finished request. */
type Format = (ex: Exchange, out: LineBuffer) => void;

/**
 * Collects the lines of one event-loop turn and writes them in one synchronous write after it:
 * a busy proxy makes one write per turn rather than one per request, a quiet one still logs at
 * once, and nothing is held in memory beyond one turn. Synchronous, as nginx and pino's default
 * do: an asynchronous write per batch went through libuv's thread pool and cost ~10% of the
 * proxy's throughput in `npm run bench`, against ~1.5% for this. Lines are ASCII (see LineBuffer.ascii).
 */
class BatchedAccessLog implements AccessLog {
  readonly #writer: LogWriter;
  readonly #format: Format;
  readonly #pending = new LineBuffer();
  #scheduled = false;
  readonly #writePending = (): void => {
    this.#scheduled = false;
    if (this.#pending.length === 0) return;
    this.#writer.write(this.#pending.view());
    this.#pending.clear();
  };

  constructor(writer: LogWriter, format: Format) {
    this.#writer = writer;
    this.#format = format;
  }

  write(ex: Exchange): void {
    this.#format(ex, this.#pending);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(this.#writePending);
    }
  }

  flush(): void {
    this.#writePending();
  }

  close(): void {
    this.#writePending();
    this.#writer.close();
  }
}

/**
 * One JSON object per line, appended piece by piece: the fields are fixed, and a generic serializer
 * (pino's) cost about a fifth of the proxy's throughput in `npm run bench`. Strings from the
 * client are escaped (jsonString); the method is an HTTP token (checked by the parser), the peer
 * an IP, the server a URL host. At cache-hit rates every 100 ns here is ~1% of throughput: hence
 * the cached time and route fields, and no string for the line.
 */
function appendJson(ex: Exchange, out: LineBuffer): void {
  const route = ex.route;
  out.bytes(JSON_PARTS.time);
  out.ascii(clock.now());
  out.bytes(JSON_PARTS.remote);
  out.ascii(ex.peer);
  out.bytes(JSON_PARTS.method);
  out.ascii(ex.info.method);
  out.bytes(JSON_PARTS.path);
  appendJsonString(out, ex.req.url as string);
  out.bytes(JSON_PARTS.host);
  appendJsonString(out, ex.info.host);
  out.bytes(JSON_PARTS.status);
  out.integer(ex.status);
  out.bytes(JSON_PARTS.bytes);
  out.integer(bodyBytes(ex));
  if (route !== undefined) out.bytes(routeFields(route));
  if (ex.server !== undefined) {
    // From the configuration, where a URL's host may hold a quote.
    out.bytes(JSON_PARTS.server);
    appendJsonString(out, ex.server.authority);
  }
  if (ex.gslb !== null) {
    // Region names are letters, digits, _ . - (the schema says so).
    out.bytes(JSON_PARTS.region);
    out.ascii(ex.gslb.region.name);
    out.bytes(JSON_PARTS.quote);
  }
  if (ex.tries > 1) {
    out.bytes(JSON_PARTS.tries);
    out.integer(ex.tries);
  }
  // The client named by a trusted proxy's X-Forwarded-For or a PROXY header, when not the peer.
  if (ex.client !== ex.peer) {
    out.bytes(JSON_PARTS.client);
    appendJsonString(out, ex.client);
  }
  out.bytes(JSON_PARTS.duration);
  appendMilliseconds(out, ex.elapsedMs());
  if (ex.upstreamHeadersMs >= 0) {
    out.bytes(JSON_PARTS.upstreamMs);
    appendMilliseconds(out, ex.upstreamHeadersMs);
  }
  if (ex.traceId !== '') {
    out.bytes(JSON_PARTS.traceId);
    out.ascii(ex.traceId);
    out.bytes(JSON_PARTS.quote);
  }
  if (ex.requestId !== '') {
    // From a trusted proxy it may hold a quote or a backslash.
    out.bytes(JSON_PARTS.requestId);
    appendJsonString(out, ex.requestId);
  }
  if (ex.errorCode !== undefined) {
    out.bytes(JSON_PARTS.error);
    out.ascii(ex.errorCode);
    out.bytes(JSON_PARTS.quote);
  }
  out.bytes(JSON_PARTS.end);
}

/** The constant parts of a JSON line, as bytes: copied whole rather than character by character. */
const JSON_PARTS = {
  time: Buffer.from('{"time":"'),
  remote: Buffer.from('","remote":"'),
  method: Buffer.from('","method":"'),
  path: Buffer.from('","path":'),
  host: Buffer.from(',"host":'),
  status: Buffer.from(',"status":'),
  bytes: Buffer.from(',"bytes":'),
  server: Buffer.from(',"server":'),
  tries: Buffer.from(',"tries":'),
  region: Buffer.from(',"region":"'),
  client: Buffer.from(',"client":'),
  duration: Buffer.from(',"duration_ms":'),
  upstreamMs: Buffer.from(',"upstream_ms":'),
  error: Buffer.from(',"error":"'),
  traceId: Buffer.from(',"trace_id":"'),
  requestId: Buffer.from(',"request_id":'),
  quote: Buffer.from('"'),
  end: Buffer.from('}\n'),
};

/** The time as ISO 8601 with milliseconds (as the operational log's), made once per millisecond rather than once per line. */
const clock = {
  ms: -1,
  text: '',
  now(): string {
    const ms = Date.now();
    if (ms !== this.ms) {
      this.ms = ms;
      this.text = new Date(ms).toISOString();
    }
    return this.text;
  },
};

/**
 * Body bytes the client got. An answer to HEAD, a 204 or a 304 has no body (RFC 9110 §9.3.2,
 * §15.3.5, §15.4.5) whatever was counted on the way: a compressor's empty gzip frame, a
 * backend that sent one anyway; node:http drops those bytes.
 */
function bodyBytes(ex: Exchange): number {
  const status = ex.status;
  return status === 204 || status === 304 || ex.info.method === 'HEAD' ? 0 : ex.bytes;
}

const routeFieldCache = new WeakMap<Route, Buffer>();

/** `,"route":…,"upstream":…`, serialised once per route. */
function routeFields(route: Route): Buffer {
  let fields = routeFieldCache.get(route);
  if (fields === undefined) {
    let text = `,"route":${jsonString(route.name)}`;
    if (route.action.kind === 'forward') text += `,"upstream":${jsonString(route.action.upstream.name)}`;
    fields = Buffer.from(text, 'latin1');
    routeFieldCache.set(route, fields);
  }
  return fields;
}

/** A JSON string literal in ASCII (\uXXXX beyond it). */
function jsonString(value: string): string {
  return needsEscape(value) ? escapedJsonString(value) : `"${value}"`;
}

/** jsonString into `out`, without making the string when nothing needs escaping (the usual path or host). */
function appendJsonString(out: LineBuffer, value: string): void {
  if (!out.quotedPlain(value)) out.ascii(escapedJsonString(value));
}

/** jsonString of a value that needs escaping (quotedPlain or needsEscape said so: not checked again). */
function escapedJsonString(value: string): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, unicodeEscape);
}

function needsEscape(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c || c > 0x7e) return true;
  }
  return false;
}

function unicodeEscape(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Milliseconds to three decimals, trailing zeros dropped ("12", "0.5", "3.042"). */
function milliseconds(ms: number): string {
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  return `${whole}${FRACTIONS[us - whole * 1000]}`;
}

/** milliseconds() into `out`, without making a string. */
function appendMilliseconds(out: LineBuffer, ms: number): void {
  const us = Math.round(ms * 1000);
  const whole = Math.floor(us / 1000);
  out.integer(whole);
  const fraction = FRACTIONS[us - whole * 1000];
  if (fraction === undefined) return; // not a finite number: integer() wrote what it is
  out.ascii(fraction);
}

/** "", ".001" … ".999", trailing zeros dropped: a thousandth's text by its number. */
const FRACTIONS = Array.from({ length: 1000 }, (_, n) => (n === 0 ? '' : `.${String(n).padStart(3, '0').replace(/0+$/, '')}`));

/** The combined format, followed by the duration and the server. */
function appendCombined(ex: Exchange, out: LineBuffer): void {
  out.ascii(
    `${combinedFields(ex)} ${milliseconds(ex.elapsedMs())}ms ${escape(ex.server?.authority ?? '-')}\n`,
  );
}

/**
 * The combined format, then "HOST" "ROUTE" UPSTREAM_MS TOTAL_MS SERVER TRACE_ID "REQUEST_ID"
 * (docs/operations.md): `-` for what is absent (no Host, no route, no upstream answer, no server,
 * tracing or request ids off); then region=NAME on gslb routes (docs/gslb.md).
 */
function appendExtended(ex: Exchange, out: LineBuffer): void {
  const upstreamMs = ex.upstreamHeadersMs >= 0 ? `${milliseconds(ex.upstreamHeadersMs)}ms` : '-';
  out.ascii(
    `${combinedFields(ex)} "${escape(ex.info.host || '-')}" "${escape(ex.route?.name ?? '-')}" ${upstreamMs} ` +
    `${milliseconds(ex.elapsedMs())}ms ${escape(ex.server?.authority ?? '-')} ${ex.traceId || '-'} "${escape(ex.requestId || '-')}"${ex.gslb === null ? '' : ` region=${ex.gslb.region.name}`}\n`,
  );
}

/** REMOTE - - [TIME] "REQUEST" STATUS BYTES "REFERER" "USER_AGENT": the combined format proper. */
function combinedFields(ex: Exchange): string {
  const req = ex.req;
  const referer = req.headers.referer ?? '-';
  const agent = req.headers['user-agent'] ?? '-';
  return (
    `${ex.peer || '-'} - - [${clfClock.now()}] "${req.method} ${escape(req.url as string)} HTTP/${req.httpVersion}" ${ex.status} ${bodyBytes(ex)} ` +
    `"${escape(referer)}" "${escape(agent)}"`
  );
}

const FORMATS: Record<Config['access_log']['format'], Format> = { json: appendJson, combined: appendCombined, extended: appendExtended };

/**
 * As nginx escapes its log variables: double quote, backslash, control characters and non-ASCII
 * bytes become \xHH (request strings hold bytes as latin1 characters; anything beyond, which the
 * parser does not let through today, becomes \uXXXX).
 */
function escape(value: string): string {
  return value.replace(/["\\\x00-\x1f\x7f-\uffff]/g, hexEscape);
}

function hexEscape(c: string): string {
  const code = c.charCodeAt(0);
  return code > 0xff ? `\\u${code.toString(16).padStart(4, '0')}` : `\\x${code.toString(16).padStart(2, '0').toUpperCase()}`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** The combined format's time, made again once a second. */
const clfClock = {
  second: -1,
  text: '',
  now(): string {
    const second = Math.floor(Date.now() / 1000);
    if (second !== this.second) {
      this.second = second;
      this.text = clfDate(new Date(second * 1000));
    }
    return this.text;
  },
};

/** 10/Oct/2000:13:55:36 +0000 */
function clfDate(d: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())} +0000`;
}
