/**
 * Random ids for traces, spans and requests, as lowercase hex. Random bytes are drawn 16 KiB at
 * a time and turned into one hex string; an id is a slice of it (V8 makes a slice of a long string
 * without copying). A request then costs no call into the CSPRNG nor into Buffer's hex encoder,
 * each of which measured as much as the rest of the id handling (crypto.randomUUID per request
 * more still). Ids need to be unique and unguessable, not secret.
 */
import { randomBytes } from 'node:crypto';

const POOL_BYTES = 16 * 1024;
let pool = '';
let offset = 0;

/** `bytes` random bytes as 2×bytes hex characters. */
export function randomHex(bytes: number): string {
  const length = bytes * 2;
  if (offset + length > pool.length) {
    pool = randomBytes(POOL_BYTES).toString('hex');
    offset = 0;
  }
  const start = offset;
  offset += length;
  return pool.slice(start, offset);
}

/** All-zero ids are invalid (W3C Trace Context §3.2.2.3, §3.2.2.4). */
export function isZeroHex(id: string): boolean {
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== 0x30) return false;
  return true;
}
