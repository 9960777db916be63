/** Answers the proxy writes itself: errors, redirects, fixed responses. Every error becomes HTTP here. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest } from 'node:http2';
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError, toGatehouseError } from '../core/errors.ts';
import { addResponseFields } from '../core/response-fields.ts';
import { applyToRecord, type HeaderOps } from '../middleware/headers.ts';

/** Writes a complete small response. */
export function sendSimple(
  ex: Exchange,
  status: number,
  body: Buffer | string,
  headers: Record<string, string | string[]>,
  ops: HeaderOps | null = null,
): void {
  const res = ex.res;
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  // RFC 9110 §15.3.5, §15.4.5: 204 and 304 carry no content, and §8.6: a 204 has no Content-Length.
  const noContent = status === 204 || status === 304;
  if (!noContent) headers['content-length'] = String(payload.length);
  if (ops !== null) applyToRecord(ops, headers);
  // A request whose body was not read cannot leave the connection in a known state. (`complete`
  // is still false while a request without a body is handled, so its framing decides.)
  // (HTTP/2 has no such field: an unread body ends with its stream.)
  if (!ex.h2 && !ex.req.complete && hasBody(ex.req)) headers['connection'] = 'close';
  ex.status = status;
  addResponseFields(ex, headers);
  res.writeHead(status, headers);
  const sendsBody = !noContent && ex.req.method !== 'HEAD';
  ex.bytes = sendsBody ? payload.length : 0;
  res.end(sendsBody ? payload : undefined);
}

/**
 * Turns any failure into the right answer: a small error response if nothing was sent yet (with
 * `headers` added, e.g. Retry-After), otherwise a cut connection, so that a truncated body is
 * never taken for a complete one.
 */
export function sendError(ex: Exchange, error: unknown, headers?: Record<string, string>): void {
  const failure = toGatehouseError(error);
  ex.errorCode = failure.code;
  const res = ex.res;
  if (failure.code === 'CLIENT_CLOSED') {
    ex.status = 499;
    if (!res.destroyed) res.destroy();
    return;
  }
  if (res.headersSent || res.destroyed) {
    if (ex.status === 0) ex.status = failure.status;
    // An HTTP/2 stream reset without an error (NO_ERROR) would tell the client that the response
    // was complete (RFC 9113 §8.1); with one it is reset with INTERNAL_ERROR.
    res.destroy(ex.h2 ? failure : undefined);
    return;
  }
  sendSimple(ex, failure.status, `${failure.status} ${failure.kind.message}\n`, {
    'content-type': 'text/plain; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  });
}

/** A throw on the request path: a catalog error keeps its status, anything else is a 500. */
export function failInternally(ex: Exchange, error: unknown, finish: (ex: Exchange) => void): void {
  sendError(ex, error instanceof GatehouseError ? error : new GatehouseError('INTERNAL', String(error), { cause: error }));
  finish(ex);
}

/**
 * RFC 9112 §6.3: an HTTP/1.1 request has a body when it carries Transfer-Encoding or a non-zero
 * Content-Length; an HTTP/2 one unless its HEADERS frame ended the stream (RFC 9113 §8.1) or it
 * says Content-Length: 0.
 */
export function hasBody(req: IncomingMessage, h2 = false): boolean {
  const length = req.headers['content-length'];
  if (h2) return length !== '0' && !(req as unknown as Http2ServerRequest).stream.endAfterHeaders;
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
