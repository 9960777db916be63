/**
 * Max-Forwards (RFC 9110 §7.6.2): on OPTIONS and TRACE, a proxy that receives 0 answers as the
 * final recipient; otherwise it forwards the request with the value one lower.
 */
import type { Exchange } from '../core/exchange.ts';
import { sendSimple } from '../listeners/respond.ts';

/** What Gatehouse itself allows when it is asked (OPTIONS with Max-Forwards: 0). */
const ALLOW = 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE';
/** RFC 9110 §9.3.8: fields likely to hold secrets are left out of a TRACE reflection. */
const SECRET_FIELDS = new Set(['authorization', 'proxy-authorization', 'cookie']);

/** The Max-Forwards value when it is a valid non-negative integer (1*DIGIT), else null. */
export function maxForwards(value: string | string[] | undefined): number | null {
  if (typeof value !== 'string' || !/^\d{1,10}$/.test(value)) return null;
  return Number(value);
}

/**
 * True when the request was answered here: an OPTIONS or TRACE with Max-Forwards: 0. Only
 * called for those two methods.
 */
export function answeredAsFinalRecipient(ex: Exchange): boolean {
  if (maxForwards(ex.req.headers['max-forwards']) !== 0) return false;
  if (ex.req.method === 'OPTIONS') {
    sendSimple(ex, 200, '', { allow: ALLOW });
    return true;
  }
  sendSimple(ex, 200, reflection(ex), { 'content-type': 'message/http' });
  return true;
}

/** The TRACE request as received (RFC 9110 §9.3.8), without the fields that may hold secrets. */
function reflection(ex: Exchange): string {
  const req = ex.req;
  let text = `${req.method} ${req.url} HTTP/${ex.h2 ? '2' : req.httpVersion}\r\n`;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 0x3a || SECRET_FIELDS.has(name.toLowerCase())) continue;
    text += `${name}: ${raw[i + 1] as string}\r\n`;
  }
  return `${text}\r\n`;
}

/** A forwarded OPTIONS or TRACE carries Max-Forwards one lower; an invalid value is dropped. */
export function decrementMaxForwards(out: string[]): void {
  for (let i = 0; i < out.length; i += 2) {
    if (out[i] !== 'max-forwards') continue;
    const value = maxForwards(out[i + 1]);
    if (value === null || value === 0) out.splice(i, 2);
    else out[i + 1] = String(value - 1);
    return;
  }
}
