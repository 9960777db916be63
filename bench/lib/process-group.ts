// The processes of a process group, from /proc (Linux). The harness starts every proxy in its own
// group, and `taskset -c 0 CMD` execs CMD, so the group id is the proxy's pid; the group also
// holds whatever it forked (nginx's master and its worker).
import { readdirSync, readFileSync } from 'node:fs';

/** Fields of /proc/PID/stat after "(comm)", or undefined if the process is gone. */
export function statFields(pid: string): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "PID (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** Pids (as in /proc) of the processes in group `pgid`; throws if there are none. */
export function groupMembers(pgid: number): string[] {
  // statFields: [0] state, [1] ppid, [2] pgrp.
  const members = readdirSync('/proc').filter((name) => /^\d+$/.test(name) && Number(statFields(name)?.[2]) === pgid);
  if (members.length === 0) throw new Error(`no process in group ${pgid} (is /proc mounted? did the proxy exit?)`);
  return members;
}
