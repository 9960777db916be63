/**
 * The old process's side of an upgrade: starts the new process from the same command line (so
 * that files replaced on disk run the new version), hands it the listening sockets it asks for,
 * and resolves once it serves. The old process drains only then; when the new one fails (a bad
 * configuration, a crash, no word within the time allowed) nothing has changed and the old one
 * goes on serving.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Server as NetServer } from 'node:net';
import { messageOf, UPGRADE_ENV, type FromNew, type FromOld } from './messages.ts';

/** How long the new process may take from its start to serving (loading its configuration, certificates, binding). */
export const START_TIMEOUT_MS = 60_000;

/**
 * Starts the process that replaces this one and hands it `sockets` (by listener key); resolves
 * with its pid once it serves, rejects (the new process ended) when it cannot start.
 */
export function startSuccessor(sockets: ReadonlyMap<string, NetServer>, timeoutMs = START_TIMEOUT_MS): Promise<number> {
  // Detached: a process group of its own, so that it outlives this one and a Ctrl-C meant for
  // this one's terminal does not reach it. stdout and stderr are this one's (the same log).
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [UPGRADE_ENV]: String(process.pid) },
  });
  return new Promise<number>((resolve, reject) => {
    let settled = false;
    /** `kill`: the new process is stuck (it exits by itself after saying it failed). */
    const settle = (error: Error | null, kill = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.removeListener('message', onMessage);
      if (kill && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (error === null) resolve(child.pid as number);
      else reject(error);
      // This process no longer waits for it (nor keeps running for its channel).
      if (child.connected) child.disconnect();
      child.unref();
    };
    const timer = setTimeout(() => settle(new Error(`the new process did not serve within ${timeoutMs / 1000}s (ended)`), true), timeoutMs);
    const onMessage = (value: unknown): void => {
      const message = messageOf<FromNew>(value, ['hello', 'want', 'serving', 'failed']);
      switch (message?.type) {
        case 'hello':
          send(child, { type: 'offer', keys: [...sockets.keys()] });
          break;
        case 'want': {
          const socket = sockets.get(message.key);
          if (socket !== undefined) send(child, { type: 'socket', key: message.key }, socket);
          break;
        }
        case 'serving':
          settle(null);
          break;
        case 'failed':
          settle(new Error(message.error));
          break;
        case undefined:
          break;
        default:
          message satisfies never;
      }
    };
    child.on('message', onMessage);
    child.once('error', (error) => settle(new Error(`cannot start ${process.execPath}: ${error.message}`)));
    child.once('exit', (code, signal) => settle(new Error(`the new process exited (${signal ?? `code ${code}`}) before serving`)));
  });
}

function send(child: ChildProcess, message: FromOld, socket?: NetServer): void {
  // A child that died meanwhile is reported by its exit; the send error says nothing more.
  child.send(message, socket, {}, () => {});
}
