/**
 * Random ids for traces, spans and requests, as lowercase hex: taken from a pool of random bytes
 * filled 16 KiB at a time, so that a request costs one hex conversion rather than a call into
 * the CSPRNG (crypto.randomUUID per request measured slower). Not secrets: ids only need to be
 * unique and unguessable enough not to collide.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 1024;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let offset = POOL_SIZE;

/** `bytes` random bytes as 2×bytes hex characters. */
export function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const start = offset;
  offset += bytes;
  return pool.toString('hex', start, offset);
}

/** A trace id (16 bytes) followed by a span id (8 bytes): 48 hex characters, cut by the caller. */
export function traceAndSpanHex(): string {
  return randomHex(24);
}

/** All-zero ids are invalid (W3C Trace Context §3.2.2.3, §3.2.2.4). */
export function isZeroHex(id: string): boolean {
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== 0x30) return false;
  return true;
}
