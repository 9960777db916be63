/**
 * What a backend's response head must satisfy before it is passed on. undici's parser (llhttp)
 * already refuses a response with both Content-Length and Transfer-Encoding, several or malformed
 * Content-Lengths, bad chunk sizes, control characters and line folding in header fields; what it
 * accepts and Gatehouse does not is a transfer coding other than plain chunked: undici decodes the
 * chunked framing only, so a "gzip, chunked" (or "gzip", read until close) body would reach the
 * client still gzip-coded once the hop-by-hop Transfer-Encoding header is dropped.
 */
import { GatehouseError } from '../core/errors.ts';

/** Throws BAD_RESPONSE (502) for a Transfer-Encoding other than "chunked". */
export function checkResponseFraming(headers: Record<string, string | string[] | undefined>): void {
  const te = headers['transfer-encoding'];
  if (te === undefined) return;
  if (typeof te !== 'string' || te.trim().toLowerCase() !== 'chunked') {
    throw new GatehouseError('BAD_RESPONSE', `backend sent Transfer-Encoding: ${String(te)}`);
  }
}
