/** `gatehouse upgrade`: signals the running Gatehouse to replace itself, and with a pid file waits for the outcome. */
import { setTimeout as sleep } from 'node:timers/promises';
import { readPidFile } from './pid-file.ts';

/** What `gatehouse upgrade` prints and exits with. */
export interface UpgradeOutcome {
  readonly code: number;
  readonly message: string;
}

/** How often the pid file is looked at while waiting. */
const POLL_MS = 50;

/** Sends SIGUSR2 to `pid` and returns at once (the log tells the outcome). */
export function signalUpgrade(pid: number): UpgradeOutcome {
  const sent = sendUpgradeSignal(pid);
  return sent ?? { code: 0, message: `gatehouse upgrade: SIGUSR2 sent to ${pid}; its log says how the upgrade went` };
}

/**
 * Sends SIGUSR2 to the process `pidFile` names and waits: the file names another live process
 * (the new one serves: exit 0), or the same pid is written again (the upgrade failed or was
 * refused: exit 1), or `timeoutMs` passes (exit 1).
 */
export async function upgradeAndWait(pidFile: string, timeoutMs: number): Promise<UpgradeOutcome> {
  const before = readPidFile(pidFile);
  if (before === undefined) return { code: 1, message: `gatehouse upgrade: no pid in ${pidFile}; is Gatehouse running with --pid-file ${pidFile}?` };
  const sent = sendUpgradeSignal(before.pid);
  if (sent !== undefined) return sent;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    await sleep(POLL_MS);
    const now = readPidFile(pidFile);
    if (now === undefined) continue;
    if (now.pid !== before.pid && alive(now.pid)) return { code: 0, message: `gatehouse upgrade: ${now.pid} serves; ${before.pid} drains and exits` };
    if (now.pid === before.pid && now.ino !== before.ino) {
      return { code: 1, message: `gatehouse upgrade: failed; ${before.pid} goes on serving (its log says why)` };
    }
  }
  return { code: 1, message: `gatehouse upgrade: no new process served within ${timeoutMs / 1000}s; ${before.pid}'s log says why` };
}

/** undefined once sent, else the outcome saying why it could not be. */
function sendUpgradeSignal(pid: number): UpgradeOutcome | undefined {
  try {
    process.kill(pid, 'SIGUSR2');
    return undefined;
  } catch (error: unknown) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'ESRCH' ? 'no such process' : code === 'EPERM' ? 'not allowed to signal it (another user?)' : String(error);
    return { code: 1, message: `gatehouse upgrade: cannot signal ${pid}: ${why}` };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
