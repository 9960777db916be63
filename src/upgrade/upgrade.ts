/** SIGUSR2 (or `gatehouse upgrade`) in the running process: replace it with a new one, or keep serving when that fails. */
import type { Server as NetServer } from 'node:net';
import type { Logger } from 'pino';
import { writePidFile } from './pid-file.ts';
import { startSuccessor } from './successor.ts';
import { errorMessage } from '../core/caught.ts';

/**
 * Starts the new process and hands it `sockets`; true once it serves (the caller drains and
 * exits), false when it could not start: that is logged with why, and the pid file (whose
 * unchanged pid says which process serves) is written again, which tells `gatehouse upgrade`
 * that the upgrade failed.
 */
export async function replaceProcess(sockets: ReadonlyMap<string, NetServer>, logger: Logger, pidFile: string | undefined): Promise<boolean> {
  logger.info({ pid: process.pid }, 'upgrade: starting a new process');
  try {
    const pid = await startSuccessor(sockets);
    logger.info({ pid: process.pid, new_pid: pid }, 'upgrade: the new process serves; this one stops accepting and drains');
    return true;
  } catch (error: unknown) {
    logger.error({ pid: process.pid, error: errorMessage(error) }, 'upgrade failed; this process goes on serving');
    if (pidFile !== undefined) rewritePidFile(pidFile, logger);
    return false;
  }
}

/** A refused upgrade (several workers): said in the log, and to `gatehouse upgrade` through the pid file. */
export function refuseUpgrade(reason: string, logger: Logger, pidFile: string | undefined): void {
  logger.error({ pid: process.pid, reason }, 'upgrade refused; this process goes on serving');
  if (pidFile !== undefined) rewritePidFile(pidFile, logger);
}

function rewritePidFile(pidFile: string, logger: Logger): void {
  try {
    writePidFile(pidFile);
  } catch (error: unknown) {
    logger.error({ pid_file: pidFile, error: errorMessage(error) }, 'cannot write the pid file');
  }
}
