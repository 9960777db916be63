/**
 * A real `redis-server` for tests: started on a free loopback port (port 0 would turn its TCP
 * listener off), without persistence, stopped when the test ends. Helpers kill, restart and pause
 * it (SIGSTOP: a Redis that answers nothing, as a slow or hung one would).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { closedPort } from './backend.ts';
import { waitFor } from './http.ts';

/** Why Redis tests are skipped on this machine, or null when redis-server is there. */
export const redisMissing: string | null = (() => {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error === undefined && probe.status === 0 ? null : 'redis-server is not installed (apt-get install redis-server); Redis tests skipped';
})();

export interface TestRedis {
  readonly port: number;
  /** redis://127.0.0.1:PORT */
  readonly url: string;
  /** Kills the server (SIGKILL: no goodbye to its clients). */
  kill(): Promise<void>;
  /** Starts it again on the same port, empty. */
  restart(): Promise<void>;
  /** Freezes the process: connections stay open but nothing is answered. */
  pause(): void;
  resume(): void;
  /** One command over a fresh connection (inline protocol); resolves with the raw reply. */
  command(line: string): Promise<string>;
}

/** Where the server's stop is registered: a test's context, or `{ after }` of node:test for a suite. */
export interface Cleanup {
  after(fn: () => unknown): void;
}

/** Starts a redis-server for the test (or suite); stopped in its after hook. Skip first when `redisMissing`. */
export async function startRedis(t: Cleanup): Promise<TestRedis> {
  const port = await closedPort();
  let child: ChildProcess | null = null;
  const start = async (): Promise<void> => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'], {
      stdio: 'ignore',
    });
    await waitFor(async () => (await ping(port)) === '+PONG', 10_000, `redis-server on port ${port}`);
  };
  const kill = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    running.kill('SIGCONT');
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  await start();
  t.after(kill);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    kill,
    restart: start,
    pause: () => void (child as ChildProcess | null)?.kill('SIGSTOP'),
    resume: () => void (child as ChildProcess | null)?.kill('SIGCONT'),
    command: (line) => send(port, line),
  };
}

/** PING over a fresh connection; '' when nothing answers. */
async function ping(port: number): Promise<string> {
  try {
    return await send(port, 'PING');
  } catch {
    return '';
  }
}

function send(port: number, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`redis on ${port}: no answer to ${line}`));
    }, 2000);
    socket.on('connect', () => socket.write(`${line}\r\n`));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.endsWith('\r\n')) {
        clearTimeout(timer);
        socket.end();
        resolve(reply.trimEnd());
      }
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}
