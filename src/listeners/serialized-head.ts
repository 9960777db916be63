/**
 * Response heads serialised once and written many times (a stored response's fields): node:http
 * validates and serialises every field on every writeHead, about 7% of a cache hit. Here only
 * Content-Length goes through writeHead, which also adds Date, Connection and Keep-Alive by its
 * usual rules; the serialised lines are put in after its status line.
 *
 * This edits `res._header`, node:http's serialised head, between writeHead and the first write.
 * The field is not documented but has kept its meaning since Node.js 0.x and much of the ecosystem
 * reads it; `SUPPORTED` checks once at start-up that it still holds a head, and where it does not
 * every field goes through writeHead as usual.
 */
import { ServerResponse, type IncomingMessage } from 'node:http';

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
   * The lines of a flat [name, value, ...] list, or null when a name or value is not valid on the
   * wire (node:http would refuse it; such a head goes through writeHead instead) or is one that
   * node:http must see to frame the response (Content-Length, Transfer-Encoding, Connection).
   */
  static of(flat: readonly string[]): SerializedHead | null {
    const lines = serialize(flat);
    if (lines === null) return null;
    let hasDate = false;
    for (let i = 0; i < flat.length; i += 2) if ((flat[i] as string).toLowerCase() === 'date') hasDate = true;
    return new SerializedHead(lines, hasDate);
  }

  /**
   * The lines followed by Age and Cache-Status, joined again only when one of them changes (Age
   * once a second); null when the status is not valid on the wire.
   */
  withAge(age: string, cacheStatus: string): string | null {
    if (age !== this.#age || cacheStatus !== this.#cacheStatus) {
      const tail = serialize(['age', age, 'cache-status', cacheStatus]);
      if (tail === null) return null;
      this.#age = age;
      this.#cacheStatus = cacheStatus;
      this.#withAge = this.lines + tail;
    }
    return this.#withAge;
  }
}

function serialize(flat: readonly string[]): string | null {
  let lines = '';
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string;
    const value = flat[i + 1] as string;
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return null;
    const lower = name.toLowerCase();
    if (lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection' || lower === 'trailer') return null;
    lines += `${name}: ${value}\r\n`;
  }
  return lines;
}

/** writeHead(status, fields) plus `lines` (from a SerializedHead) after the status line. */
export function writeSerializedHead(res: ServerResponse, status: number, lines: string, hasDate: boolean, fields: string[]): void {
  if (hasDate) res.sendDate = false;
  res.writeHead(status, fields);
  const written = res as unknown as { _header: string };
  const statusLineEnd = written._header.indexOf('\r\n') + 2;
  written._header = written._header.slice(0, statusLineEnd) + lines + written._header.slice(statusLineEnd);
}

/** True when node:http keeps the head it will send in `res._header` after writeHead. */
export const SUPPORTED: boolean = (() => {
  const req = { method: 'GET', httpVersionMajor: 1, httpVersionMinor: 1, headers: {} } as IncomingMessage;
  const res = new ServerResponse(req);
  res.writeHead(200, ['content-length', '0']);
  const head = (res as unknown as { _header?: unknown })._header;
  return typeof head === 'string' && head.startsWith('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n') && head.endsWith('\r\n\r\n');
})();
