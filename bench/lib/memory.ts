// Resident memory (VmRSS) of a process group, from /proc (Linux): a proxy and whatever it forked,
// e.g. nginx's master and its worker. The harness starts every proxy in its own group, and
// `taskset -c 0 CMD` execs CMD, so the group id is the proxy's pid.
import { readdirSync, readFileSync } from 'node:fs';

/** The process group of `pid` (field 5 of /proc/PID/stat), or undefined if it is gone. */
function groupOf(pid: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[2]);
  } catch {
    return undefined;
  }
}

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
  const members = readdirSync('/proc').filter((name) => /^\d+$/.test(name) && groupOf(name) === pgid);
  if (members.length === 0) throw new Error(`no process in group ${pgid} (is /proc mounted? did the proxy exit?)`);
  return members.reduce((sum, pid) => sum + rssKiB(pid), 0);
}
