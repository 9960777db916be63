/**
 * What node:http's parser (llhttp, strict mode) lets through and Gatehouse refuses, so that a
 * request is forwarded only in one unambiguous form (see docs/security.md for the full list and
 * for what llhttp itself refuses). Runs once per request before routing: a few property reads and
 * one scan of the Host and of the path, no allocation unless the target has to change.
 */
import type { IncomingMessage } from 'node:http';
import type { ErrorCode } from '../core/errors.ts';
import { normalizeTarget, type PathPolicy } from '../routing/normalize-path.ts';
import { hasSecondHost, isValidHost, originForm } from '../routing/request-target.ts';

/** The compiled request checks of a snapshot. */
export interface RequestPolicy {
  readonly paths: PathPolicy;
  /** Most header lines (node:http is told to keep one more, so that one too many is seen). */
  readonly maxHeaderCount: number;
  readonly maxUrlLength: number;
}

/**
 * Null when the request may go on, with `req.url` in normal origin-form; otherwise the error to
 * answer (and the connection is to be closed).
 */
export function checkRequest(req: IncomingMessage, policy: RequestPolicy): ErrorCode | null {
  // HTTP/1.0 and 1.1 only: llhttp also reads "HTTP/2.0" request lines and HTTP/0.9 ones.
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor > 1) return 'BAD_REQUEST';
  if (req.rawHeaders.length > policy.maxHeaderCount * 2) return 'HEADERS_TOO_LARGE';
  const url = req.url as string;
  if (url.length > policy.maxUrlLength) return 'URI_TOO_LONG';
  const headers = req.headers;
  // RFC 9112 §6.1: chunked is the only transfer coding Gatehouse decodes, so it must be the only
  // one ("gzip, chunked" passes llhttp but its body would reach the backend still gzip-coded, with
  // no header saying so); and an HTTP/1.0 message with Transfer-Encoding has faulty framing.
  const te = headers['transfer-encoding'];
  if (te !== undefined && (req.httpVersionMinor === 0 || !isChunkedOnly(te))) return 'BAD_REQUEST';
  // RFC 9112 §3.2: one valid Host line (a second is only possible when `headers.host` is set).
  const host = headers.host;
  if (host !== undefined && (!isValidHost(host) || hasSecondHost(req.rawHeaders))) return 'BAD_REQUEST';
  // Only origin-form is routed: absolute-form naming the Host becomes origin-form, anything else
  // (another authority, "*", authority-form) is refused, so that route and backend see one target.
  let target = url;
  if (target.charCodeAt(0) !== 0x2f) {
    const origin = originForm(target, host);
    if (origin === null) return 'BAD_REQUEST';
    target = origin;
  }
  const normal = normalizeTarget(target, policy.paths);
  if (normal === null) return 'BAD_REQUEST';
  if (normal !== url) req.url = normal;
  return null;
}

/**
 * The same for an HTTP/2 request. nghttp2 has already refused what RFC 9113 §8.2.2 and §8.3 call
 * malformed (connection-specific fields, TE other than "trailers", bad pseudo-header fields, a
 * Content-Length that disagrees with the DATA frames), so what is left is the target and the
 * authority: Host, when present, must name what :authority names (§8.3.1).
 */
export function checkHttp2Request(req: IncomingMessage, policy: RequestPolicy): ErrorCode | null {
  if (req.rawHeaders.length > (policy.maxHeaderCount + 5) * 2) return 'HEADERS_TOO_LARGE';
  const url = req.url as string;
  if (url.length > policy.maxUrlLength) return 'URI_TOO_LONG';
  const headers = req.headers;
  const host = headers.host;
  if (host === undefined || !isValidHost(host)) return 'BAD_REQUEST';
  const authority = headers[':authority'];
  if (authority !== undefined && authority !== host) return 'BAD_REQUEST';
  // CONNECT (authority-form) and "*" are not routed, as on HTTP/1.1.
  if (url.charCodeAt(0) !== 0x2f) return 'BAD_REQUEST';
  const normal = normalizeTarget(url, policy.paths);
  if (normal === null) return 'BAD_REQUEST';
  if (normal !== url) req.url = normal;
  return null;
}

/** "chunked", in any case. */
function isChunkedOnly(te: string): boolean {
  if (te.length !== 7) return false;
  const word = 'chunked';
  for (let i = 0; i < 7; i++) if ((te.charCodeAt(i) | 0x20) !== word.charCodeAt(i)) return false;
  return true;
}
