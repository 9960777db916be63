/**
 * W3C Trace Context level 1 (https://www.w3.org/TR/trace-context/): reading a request's
 * `traceparent`, and the one Gatehouse sends to servers, whose parent is Gatehouse's own span.
 */
import { isZeroHex } from './ids.ts';

/** What a valid incoming `traceparent` says. */
export interface IncomingTrace {
  readonly traceId: string;
  readonly parentId: string;
  /** The trace-flags byte (bit 0: sampled). */
  readonly flags: number;
}

/**
 * Parses `traceparent`; null when absent or malformed (then a new trace starts, §3.2.2.5). Version
 * 00 must be exactly 55 characters; a higher version (not ff) is read by its first four fields
 * (§3.2.4: a future version may append fields after a dash). Hex must be lowercase.
 */
export function parseTraceparent(value: string | string[] | undefined): IncomingTrace | null {
  // Several traceparent fields make it invalid (§3.2: a vendor must not try to merge them).
  if (typeof value !== 'string') return null;
  if (value.length < 55) return null;
  // Version and flags are read digit by digit: no string is made of them.
  const version = hexByte(value, 0);
  if (version < 0 || version === 0xff) return null;
  if (version === 0 ? value.length !== 55 : value.length > 55 && value.charCodeAt(55) !== 0x2d) return null;
  if (value.charCodeAt(2) !== 0x2d || value.charCodeAt(35) !== 0x2d || value.charCodeAt(52) !== 0x2d) return null;
  const flags = hexByte(value, 53);
  if (flags < 0) return null;
  const traceId = value.slice(3, 35);
  const parentId = value.slice(36, 52);
  if (!isLowerHex(traceId) || !isLowerHex(parentId)) return null;
  if (isZeroHex(traceId) || isZeroHex(parentId)) return null;
  return { traceId, parentId, flags };
}

/** `traceparent` for a request sent with `spanId` as its parent: version 00, the sampled bit only (§3.2.2.5). */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/** The two lowercase hex digits at `at` as a number, or -1. */
function hexByte(s: string, at: number): number {
  const high = hexDigit(s.charCodeAt(at));
  const low = hexDigit(s.charCodeAt(at + 1));
  return high < 0 || low < 0 ? -1 : high * 16 + low;
}

function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isLowerHex(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (hexDigit(s.charCodeAt(i)) < 0) return false;
  return true;
}
