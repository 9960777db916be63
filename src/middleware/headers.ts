/** Header edits configured per route (`request_headers`, `response_headers`), compiled once. */
import type { HeaderOpsConfig } from '../config/schema.ts';

/** Lower-cased, ready-to-apply header edits. */
export interface HeaderOps {
  readonly remove: ReadonlySet<string>;
  readonly set: readonly (readonly [string, string])[];
  readonly add: readonly (readonly [string, string])[];
}

export function compileHeaderOps(config: HeaderOpsConfig | undefined): HeaderOps | null {
  if (config === undefined) return null;
  const set = Object.entries(config.set).map(([k, v]) => [k.toLowerCase(), v] as const);
  const add = Object.entries(config.add).map(([k, v]) => [k.toLowerCase(), v] as const);
  // A set header replaces whatever came in, so it is removed first.
  const remove = new Set([...config.remove.map((n) => n.toLowerCase()), ...set.map(([k]) => k)]);
  if (set.length === 0 && add.length === 0 && remove.size === 0) return null;
  return { remove, set, add };
}

/** Applies the edits to a flat [name, value, ...] list with lower-case names. */
export function applyToFlat(ops: HeaderOps, flat: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    if (!ops.remove.has(flat[i] as string)) out.push(flat[i] as string, flat[i + 1] as string);
  }
  for (const [k, v] of ops.set) out.push(k, v);
  for (const [k, v] of ops.add) out.push(k, v);
  return out;
}

/** Applies the edits to a header record with lower-case names. */
export function applyToRecord(ops: HeaderOps, headers: Record<string, string | string[]>): void {
  for (const name of ops.remove) delete headers[name];
  for (const [k, v] of ops.set) headers[k] = v;
  for (const [k, v] of ops.add) {
    const existing = headers[k];
    headers[k] = existing === undefined ? v : Array.isArray(existing) ? [...existing, v] : [existing, v];
  }
}
