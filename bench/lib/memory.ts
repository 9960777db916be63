// Resident memory (VmRSS) of a proxy: the sum over its process group (see process-group.ts).
import { readFileSync } from 'node:fs';
import { groupMembers } from './process-group.ts';

/** VmRSS of `pid` in KiB, or 0 if it is gone. */
export function rssKiB(pid: number | string): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Sum of VmRSS (KiB) over the processes of group `pgid`; throws if it has none. */
export function groupRssKiB(pgid: number): number {
  return groupMembers(pgid).reduce((sum, pid) => sum + rssKiB(pid), 0);
}
