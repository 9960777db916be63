/**
 * One status for the whole proxy from each worker's (GET /status, GET /cache): counters add up;
 * settings and states are the same in every worker and are taken once; a few figures that every
 * worker reads from shared memory are taken once too (the largest).
 */

/** Numbers that are not counts: the same in every worker, or not meaningful as a sum. */
const NOT_SUMMED = new Set(['pid', 'weight', 'routes', 'uptime_s', 'ewma_ms', 'slow_start_share', 'ms', 'max_size', 'ejected_for_ms', 'rtt_ms']);
/** Read from shared memory by every worker, or told to every worker (a server's ejections): counted once. */
const SHARED = new Set(['bans_active', 'rate_limit_keys', 'clients_counted', 'ejections']);
/** Whole values every worker reads alike (the same IP list files): taken once, nothing in them summed. */
const SAME_EVERYWHERE = new Set(['list_files']);

export function mergeStatuses(statuses: readonly unknown[], key = ''): unknown {
  const [first] = statuses;
  if (SAME_EVERYWHERE.has(key)) return first;
  // Redis as the workers see it: degraded when any is, connected when all are.
  if (typeof first === 'boolean' && (key === 'degraded' || key === 'connected')) {
    return key === 'degraded' ? statuses.some((s) => s === true) : statuses.every((s) => s === true);
  }
  if (typeof first === 'number') {
    const numbers = statuses.filter((s): s is number => typeof s === 'number');
    if (SHARED.has(key) || NOT_SUMMED.has(key)) return Math.max(...numbers);
    return numbers.reduce((a, b) => a + b, 0);
  }
  if (Array.isArray(first)) {
    const arrays = statuses.filter((s): s is unknown[] => Array.isArray(s) && s.length === first.length);
    // Lists of objects (servers) line up by position; lists of values (addresses) are the same everywhere.
    if (first.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item))) {
      return first.map((_, i) => mergeStatuses(arrays.map((a) => a[i]), key));
    }
    return first;
  }
  if (typeof first === 'object' && first !== null) {
    const objects = statuses.filter((s): s is Record<string, unknown> => typeof s === 'object' && s !== null && !Array.isArray(s));
    const keys = new Set(objects.flatMap((o) => Object.keys(o)));
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const values = objects.map((o) => o[k]).filter((v) => v !== undefined);
      out[k] = mergeStatuses(values, k);
    }
    return out;
  }
  return first;
}
