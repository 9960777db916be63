/** The pid file (`run --pid-file FILE`): where operators, systemd and `gatehouse upgrade` find the serving process. */
import { errorCodeOrMessage } from '../core/caught.ts';
import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { temporaryName } from '../core/state-dir.ts';

/**
 * Writes this process's pid to `path` by renaming a complete temporary file over it, so that a
 * reader never sees a half-written file; every write is a new file (a new inode), which is how
 * `gatehouse upgrade` tells that an upgrade failed (the old process writes its pid again).
 */
export function writePidFile(path: string, pid = process.pid): void {
  const temporary = temporaryName(path);
  try {
    writeFileSync(temporary, `${pid}\n`);
    renameSync(temporary, path);
  } catch (error: unknown) {
    throw new Error(`cannot write the pid file ${path}: ${errorCodeOrMessage(error)}`, { cause: error });
  }
}

/** The pid in `path` and the file's identity (inode), or undefined when there is no readable pid. */
export function readPidFile(path: string): { readonly pid: number; readonly ino: number } | undefined {
  try {
    const ino = statSync(path).ino;
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? { pid, ino } : undefined;
  } catch {
    return undefined; // absent, or being replaced this instant: the caller looks again
  }
}

/** Removes `path` at exit, unless it names another process now (the one that replaced this one). */
export function removePidFile(path: string): void {
  if (readPidFile(path)?.pid !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // Removed by someone else meanwhile: nothing left to do.
  }
}
