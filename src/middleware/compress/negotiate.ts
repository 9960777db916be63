/**
 * Content negotiation for compression (RFC 9110 §12.5.3): which of the server's encodings a
 * client's Accept-Encoding allows, by q-value, ties going to the server's order of preference.
 */
import type { Encoding } from '../../config/acceleration-schema.ts';

/** Coding (lower case) → q-value, from an Accept-Encoding value. x-gzip is gzip (RFC 9110 §8.4.1.3). */
export function parseAcceptEncoding(value: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const part of value.split(',')) {
    const [coding, ...params] = part.split(';');
    let token = (coding ?? '').trim().toLowerCase();
    if (token === '') continue;
    if (token === 'x-gzip') token = 'gzip';
    let q = 1;
    for (const param of params) {
      const [name, arg] = param.split('=');
      if ((name ?? '').trim().toLowerCase() !== 'q') continue;
      const parsed = Number((arg ?? '').trim());
      q = Number.isFinite(parsed) ? Math.min(1, Math.max(0, parsed)) : 0;
    }
    // The first mention of a coding counts.
    if (!out.has(token)) out.set(token, q);
  }
  return out;
}

/** The q-value the client gives `coding`: its own, else the "*" one, else 0. */
function qOf(accepted: ReadonlyMap<string, number>, coding: string): number {
  return accepted.get(coding) ?? accepted.get('*') ?? 0;
}

/**
 * The encoding to compress with, or null for none. No Accept-Encoding means none (RFC 9110 allows
 * any, but clients that send none are mostly tools that would not decode it). An explicit
 * identity preferred over every offered encoding also means none.
 */
export function chooseEncoding(acceptEncoding: string | undefined, preference: readonly Encoding[]): Encoding | null {
  if (acceptEncoding === undefined || acceptEncoding === '') return null;
  const accepted = parseAcceptEncoding(acceptEncoding);
  let best: Encoding | null = null;
  let bestQ = 0;
  for (const encoding of preference) {
    const q = qOf(accepted, encoding);
    if (q > bestQ) {
      best = encoding;
      bestQ = q;
    }
  }
  const identity = accepted.get('identity');
  if (best !== null && identity !== undefined && identity > bestQ) return null;
  return best;
}

/** True when the client accepts content coded with `coding` (for passing a backend's encoding through). */
export function acceptsCoding(acceptEncoding: string | undefined, coding: string): boolean {
  // Without Accept-Encoding any coding is acceptable (RFC 9110 §12.5.3).
  if (acceptEncoding === undefined) return true;
  const accepted = parseAcceptEncoding(acceptEncoding);
  return qOf(accepted, coding === 'x-gzip' ? 'gzip' : coding) > 0;
}
