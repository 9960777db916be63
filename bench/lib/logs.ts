// Per-process log files under bench/results/logs/ and reading their tails.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function openLog(dir: string, name: string): { path: string; fd: number } {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  return { path, fd: openSync(path, 'w') };
}

export function closeLog(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

/**
 * The last `lines` lines of a file ('' if it does not exist), without blank
 * lines and JavaScript stack frames so that the error message itself shows.
 */
export function tail(path: string, lines = 12): string {
  if (!existsSync(path)) return '';
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim().length > 0 && !/^\s+at /.test(line))
    .slice(-lines)
    .join('\n');
}
