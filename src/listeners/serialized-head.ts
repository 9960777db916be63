/**
 * Response heads serialised once and written many times (a stored response's fields): node:http
 * validates and serialises every field on every writeHead, about 10% of a cache hit.
 *
 * On a kept-alive connection, the usual case, the whole head is put together here: the status
 * line, the serialised lines, Content-Length, Date and the Connection and Keep-Alive lines as
 * node:http's _storeHeader (lib/_http_outgoing.js) would write them, from the same per-response
 * settings it reads. Otherwise (the connection closes after this answer) only Content-Length goes
 * through writeHead and the lines are put in after its status line. Nothing may have been set on
 * the response before (the caller writes such answers through writeHead).
 *
 * Both edit `res._header`, node:http's serialised head, before anything is written. The field is
 * not documented but has kept its meaning since Node.js 0.x and much of the ecosystem reads it;
 * `SUPPORTED` checks once at start-up that it still holds the head, and where it does not every
 * field goes through writeHead as usual. test/e2e/cache-basics.test.ts checks the bytes on the wire.
 */
import { ServerResponse, STATUS_CODES, type IncomingMessage } from 'node:http';

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Header lines ("name: value\r\n" each), checked once, with whether they carry a Date. */
export class SerializedHead {
  readonly lines: string;
  readonly hasDate: boolean;
  #age = '';
  #cacheStatus = '';
  #withAge = '';

  private constructor(lines: string, hasDate: boolean) {
    this.lines = lines;
    this.hasDate = hasDate;
  }

  /**
   * The lines of a flat [name, value, ...] list, or null (the head then goes through writeHead)
   * when node:http does not keep its head in `_header`, when a name or value is not valid on the
   * wire, or when it names a field node:http must see to frame the response (Content-Length,
   * Transfer-Encoding, Connection, Trailer).
   */
  static of(flat: readonly string[]): SerializedHead | null {
    if (!SUPPORTED || flat.length % 2 !== 0) return null;
    let lines = '';
    let hasDate = false;
    for (let i = 0; i < flat.length; i += 2) {
      const name = flat[i];
      const value = flat[i + 1];
      if (typeof name !== 'string' || typeof value !== 'string' || !TOKEN.test(name) || !FIELD_VALUE.test(value)) return null;
      const lower = name.toLowerCase();
      if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection' || lower === 'trailer') return null;
      if (lower === 'date') hasDate = true;
      lines += `${name}: ${value}\r\n`;
    }
    return new SerializedHead(lines, hasDate);
  }

  /**
   * The lines followed by Age and Cache-Status, joined again only when one of them changes (Age
   * once a second); null when the status is not valid on the wire.
   */
  withAge(age: string, cacheStatus: string): string | null {
    if (age !== this.#age || cacheStatus !== this.#cacheStatus) {
      if (!FIELD_VALUE.test(age) || !FIELD_VALUE.test(cacheStatus)) return null;
      this.#age = age;
      this.#cacheStatus = cacheStatus;
      this.#withAge = `${this.lines}age: ${age}\r\ncache-status: ${cacheStatus}\r\n`;
    }
    return this.#withAge;
  }
}

/** What node:http sets on each ServerResponse that decides its Connection and Keep-Alive lines. */
interface ResponseInternals {
  _header: string | null;
  _headerSent: boolean;
  _keepAliveTimeout?: unknown;
  _maxRequestsPerSocket?: unknown;
  _defaultKeepAlive?: unknown;
  _removedConnection?: unknown;
  _expect_continue?: unknown;
  _sent100?: unknown;
  maxRequestsOnConnectionReached?: unknown;
}

/**
 * Writes the head of a response: `lines` (from `head`, with whatever was appended to them), then
 * Content-Length (null for a status without content), Date unless the lines have one, and the
 * connection fields. Nothing may have been set on `res` before (setHeader): fields of the same
 * name would be sent twice, where writeHead with a field list replaces them.
 */
export function writeSerializedHead(res: ServerResponse, status: number, head: SerializedHead, lines: string, contentLength: string | null): void {
  const internals = res as unknown as ResponseInternals;
  const keepAlive = contentLength === null ? null : keepAliveLines(res, internals);
  if (keepAlive !== null) {
    res.statusCode = status;
    res.statusMessage = STATUS_CODES[status] ?? 'unknown';
    const date = head.hasDate || !res.sendDate ? '' : httpDateLine();
    internals._header = `HTTP/1.1 ${status} ${res.statusMessage}\r\n${lines}content-length: ${contentLength}\r\n${date}${keepAlive}\r\n`;
    internals._headerSent = false;
    return;
  }
  if (head.hasDate) res.sendDate = false;
  res.writeHead(status, contentLength === null ? [] : ['content-length', contentLength]);
  const written = internals._header as string;
  const statusLineEnd = written.indexOf('\r\n') + 2;
  internals._header = written.slice(0, statusLineEnd) + lines + written.slice(statusLineEnd);
}

let keepAliveKey = '';
let keepAliveText = '';

/**
 * "Connection: keep-alive" and "Keep-Alive: timeout=N[, max=M]" as _storeHeader writes them for a
 * response with a Content-Length on a connection that stays open; null when the connection closes
 * after this response or anything else is out of the ordinary (writeHead decides then).
 */
function keepAliveLines(res: ServerResponse, internals: ResponseInternals): string | null {
  if (!res.shouldKeepAlive || internals._header !== null || internals.maxRequestsOnConnectionReached !== false) return null;
  // writeHead closes a connection whose client waits for a 100 Continue that was not sent.
  if (internals._expect_continue === true && internals._sent100 !== true) return null;
  const timeout = internals._keepAliveTimeout;
  const max = internals._maxRequestsPerSocket;
  if (internals._defaultKeepAlive !== true || internals._removedConnection === true || typeof timeout !== 'number' || typeof max !== 'number') return null;
  const key = `${timeout}/${max}`;
  if (key !== keepAliveKey) {
    keepAliveKey = key;
    const seconds = Math.floor(timeout / 1000);
    keepAliveText = timeout > 0 ? `Connection: keep-alive\r\nKeep-Alive: timeout=${seconds}${~~max > 0 ? `, max=${max}` : ''}\r\n` : 'Connection: keep-alive\r\n';
  }
  return keepAliveText;
}

let dateSecond = -1;
let dateText = '';

/** "Date: …" for now, as node:http writes it (made again once a second). */
function httpDateLine(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = `Date: ${new Date(second * 1000).toUTCString()}\r\n`;
  }
  return dateText;
}

/** True when node:http keeps the head it will send in `res._header` after writeHead. */
export const SUPPORTED: boolean = (() => {
  const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} } as IncomingMessage;
  const res = new ServerResponse(req);
  res.writeHead(200, ['content-length', '0']);
  const head = (res as unknown as { _header?: unknown })._header;
  return typeof head === 'string' && head.startsWith('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n') && head.endsWith('\r\n\r\n');
})();
