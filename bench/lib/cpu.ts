// Per-core CPU utilisation from /proc/stat (Linux), to tell whether the proxy
// core or the load core (backend + load tool) was the bottleneck of a run; and the CPU time
// the proxy's own processes used, which other processes on its core do not inflate.
import { readFileSync } from 'node:fs';
import { groupMembers, statFields } from './process-group.ts';

/** USER_HZ: /proc reports CPU times in ticks of 10 ms on Linux. */
const TICKS_PER_SECOND = 100;

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

/** CPU seconds (user + system, all threads) used so far by the processes of group `pgid`. */
export function groupCpuSeconds(pgid: number): number {
  let ticks = 0;
  for (const pid of groupMembers(pgid)) {
    const fields = statFields(pid);
    // utime and stime are fields 14 and 15 of /proc/PID/stat: [11] and [12] after "(comm)".
    if (fields !== undefined) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / TICKS_PER_SECOND;
}
