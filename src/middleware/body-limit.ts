/** The request body handed to the transport, held to `limits.max_body_size` (413 past it). */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { noteBodyBytes, SCAVENGE_EVERY } from '../core/body-memory.ts';
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { hasBody } from '../listeners/respond.ts';

/**
 * Null when the request has no body; the request stream itself when its declared length is
 * within the limit (the HTTP parser enforces that length) and below SCAVENGE_EVERY; a counting
 * stream for larger and chunked bodies. A declared length over the limit is refused before
 * anything is sent upstream.
 */
export function requestBody(ex: Exchange): Readable | null | GatehouseError {
  const headers = ex.req.headers;
  const length = headers['content-length'];
  const limit = ex.snapshot.maxBodySize;
  if (length !== undefined) {
    const declared = Number(length);
    if (limit > 0 && declared > limit) return new GatehouseError('BODY_TOO_LARGE');
    if (length === '0') return null;
    // body-memory.ts: a body smaller than the mark is counted at once, with no stream in its way;
    // a larger one passes the counting stream, so a long upload gets its scavenges on the way.
    if (declared < SCAVENGE_EVERY) {
      noteBodyBytes(declared);
      return ex.req;
    }
    return ex.req.pipe(new BodyLimit(limit > 0 ? limit : Infinity, ex));
  }
  // Without a length: chunked on HTTP/1.1, DATA frames until END_STREAM on HTTP/2.
  if (!(ex.h2 ? hasBody(ex.req, true) : headers['transfer-encoding'] !== undefined)) return null;
  return limit > 0 ? ex.req.pipe(new BodyLimit(limit, ex)) : ex.req;
}

class BodyLimit extends Transform {
  readonly #limit: number;
  readonly #ex: Exchange;
  #seen = 0;

  constructor(limit: number, ex: Exchange) {
    super();
    this.#limit = limit;
    this.#ex = ex;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#seen += chunk.length;
    // For /metrics: a body without a declared length is counted here.
    this.#ex.bodyBytesIn = this.#seen;
    noteBodyBytes(chunk.length);
    if (this.#seen > this.#limit) callback(new GatehouseError('BODY_TOO_LARGE'));
    else callback(null, chunk);
  }
}
