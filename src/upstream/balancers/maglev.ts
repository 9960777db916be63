/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016), weighted as Envoy does it: a lookup
 * table of a prime size in which each server claims slots in its own pseudo-random order. A key
 * is one table lookup; removing one of n servers moves about 1/n of the keys (little more).
 */
import { createHash } from 'node:crypto';

/** Envoy's default: prime, and large against the number of servers so that shares are even. */
export const TABLE_SIZE = 65537;

/**
 * Builds the table: entry i is the index (in `keys`) of the server owning slot i. `keys` identify
 * the servers stably (their origin); `weights` are positive. Empty `keys` give an empty table.
 */
export function buildTable(keys: readonly string[], weights: readonly number[], size = TABLE_SIZE): Int32Array {
  const n = keys.length;
  if (n === 0) return new Int32Array(0);
  const table = new Int32Array(size).fill(-1);
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const next = new Float64Array(n);
  const target = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const digest = createHash('sha256').update(keys[i] as string).digest();
    offset[i] = digest.readUInt32BE(0) % size;
    skip[i] = (digest.readUInt32BE(4) % (size - 1)) + 1;
    maxWeight = Math.max(maxWeight, weights[i] as number);
  }
  let filled = 0;
  for (let iteration = 1; filled < size; iteration++) {
    for (let i = 0; i < n && filled < size; i++) {
      // A server of the largest weight claims a slot every round; one of a third of it, every third round.
      if (iteration * (weights[i] as number) < (target[i] as number)) continue;
      target[i] = (target[i] as number) + maxWeight;
      let slot = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % size;
      while (table[slot] !== -1) {
        next[i] = (next[i] as number) + 1;
        slot = ((offset[i] as number) + (skip[i] as number) * (next[i] as number)) % size;
      }
      table[slot] = i;
      next[i] = (next[i] as number) + 1;
      filled++;
    }
  }
  return table;
}
