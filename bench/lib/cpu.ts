// Per-core CPU utilisation from /proc/stat (Linux), to tell whether the proxy
// core or the load core (backend + wrk) was the bottleneck of a run.
import { readFileSync } from 'node:fs';

interface CoreTime {
  busy: number;
  total: number;
}

export type CoreTimes = ReadonlyMap<number, CoreTime>;

/** Current per-core jiffies, or undefined where /proc/stat is unavailable. */
export function readCoreTimes(): CoreTimes | undefined {
  let text: string;
  try {
    text = readFileSync('/proc/stat', 'utf8');
  } catch {
    return undefined;
  }
  const cores = new Map<number, CoreTime>();
  for (const line of text.split('\n')) {
    const match = /^cpu(\d+)\s+(.*)$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    // user nice system idle iowait irq softirq steal (guest time is inside user)
    const fields = match[2].trim().split(/\s+/).slice(0, 8).map(Number);
    const total = fields.reduce((sum, n) => sum + n, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    cores.set(Number(match[1]), { busy: total - idle, total });
  }
  return cores;
}

/** Busy percentage of `core` between two readings (null if unknown). */
export function busyPercent(before: CoreTimes | undefined, after: CoreTimes | undefined, core: number): number | null {
  const a = before?.get(core);
  const b = after?.get(core);
  if (a === undefined || b === undefined || b.total <= a.total) return null;
  return Math.round((100 * (b.busy - a.busy)) / (b.total - a.total));
}
