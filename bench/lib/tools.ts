// Locating external tools (wrk, h2load, openssl, nginx, varnishd, taskset) and CPU pinning.
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Absolute path of an executable, searching PATH and then `extraDirs`. */
export function findExecutable(name: string, extraDirs: readonly string[] = []): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(delimiter), ...extraDirs].filter((d) => d.length > 0);
  for (const dir of dirs) {
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

const SBIN_DIRS = ['/usr/sbin', '/usr/local/sbin', '/sbin'];

export interface Tools {
  wrk: string | undefined;
  /** HTTP/2 load generator (nghttp2-client): the h2 scenario. */
  h2load: string | undefined;
  /** Makes the run's certificate: the TLS scenarios. */
  openssl: string | undefined;
  nginx: string | undefined;
  varnishd: string | undefined;
  /** Caddy (issue 21's gzip comparison). */
  caddy: string | undefined;
  /** The limits scenario's gatehouse-limits-redis keeps its limit there. */
  redisServer: string | undefined;
  taskset: string | undefined;
}

export function locateTools(): Tools {
  return {
    wrk: findExecutable('wrk'),
    h2load: findExecutable('h2load'),
    openssl: findExecutable('openssl'),
    nginx: findExecutable('nginx', SBIN_DIRS),
    varnishd: findExecutable('varnishd', SBIN_DIRS),
    caddy: findExecutable('caddy', SBIN_DIRS),
    redisServer: findExecutable('redis-server', SBIN_DIRS),
    taskset: findExecutable('taskset'),
  };
}

/** Core layout: the proxy under test gets core 0 alone; backend and wrk share core 1. */
export const PROXY_CORE = 0;
export const LOAD_CORE = 1;

export interface Command {
  command: string;
  args: string[];
}

/** Wrap a command in `taskset -c CORE` when taskset is available; core null: not pinned. */
export function pinned(taskset: string | undefined, core: number | null, command: string, args: readonly string[]): Command {
  if (taskset === undefined || core === null) return { command, args: [...args] };
  return { command: taskset, args: ['-c', String(core), command, ...args] };
}
