// Child processes of the harness: each one runs in its own process group so
// that stopping it also stops whatever it forked (e.g. nginx workers), and
// every live child is tracked so that nothing survives the harness.
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { once } from 'node:events';

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
}

const live = new Set<Child>();

export interface SpawnOptions {
  cwd?: string;
  stdio: StdioOptions;
  env?: NodeJS.ProcessEnv;
}

export function spawnChild(name: string, command: string, args: readonly string[], options: SpawnOptions): Child {
  const proc = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: options.stdio,
    detached: true, // own process group: we signal the whole group
  });
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      live.delete(child);
      sweepGroup(proc);
      resolve({ code, signal });
    };
    proc.once('exit', finish);
    proc.once('error', () => finish(null, null)); // e.g. ENOENT: never started
  });
  const child: Child = { name, process: proc, exited, hasExited: () => done };
  live.add(child);
  return child;
}

/** Signal the child's whole process group. */
function signalGroup(child: Child, signal: NodeJS.Signals): void {
  const pid = child.process.pid;
  if (pid === undefined || child.hasExited()) return;
  try {
    process.kill(-pid, signal);
  } catch {
    try {
      child.process.kill(signal);
    } catch {
      // already gone
    }
  }
}

/**
 * The leader has just exited (and was reaped); processes it forked may still
 * hold its process group. While they do, the group id cannot be reused, so
 * this only reaches the child's own leftovers.
 */
function sweepGroup(proc: ChildProcess): void {
  if (proc.pid === undefined) return;
  try {
    process.kill(-proc.pid, 'SIGKILL');
  } catch {
    // ESRCH: the group is empty, which is the normal case
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopChild(child: Child, graceMs = 3000): Promise<void> {
  if (child.hasExited()) return;
  signalGroup(child, 'SIGTERM');
  const exitedInTime = await Promise.race([child.exited.then(() => true), sleep(graceMs).then(() => false)]);
  if (exitedInTime) return;
  signalGroup(child, 'SIGKILL');
  await Promise.race([child.exited, sleep(1000)]);
}

export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((child) => stopChild(child)));
}

/** Last-resort synchronous cleanup for the 'exit' event. */
export function killAllChildrenSync(): void {
  for (const child of live) signalGroup(child, 'SIGKILL');
}

/**
 * Runs a load tool (wrk, h2load) to its end and returns its stdout. It is stopped after
 * `timeoutMs`, and then `timeoutError` is thrown when given; an exit code other than 0 throws
 * with the tool's stderr.
 */
export async function runToEnd(name: string, command: string, args: readonly string[], timeoutMs: number, timeoutError?: string): Promise<string> {
  const child = spawnChild(name, command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderrChunks: Buffer[] = [];
  child.process.stderr?.on('data', (chunk: Buffer) => stderrChunks.push(chunk));
  let timedOut = false;
  const watchdog = setTimeout(() => {
    timedOut = true;
    void stopChild(child);
  }, timeoutMs);
  try {
    const output = await collectStdout(child);
    const { code, signal } = await child.exited;
    if (timedOut && timeoutError !== undefined) throw new Error(timeoutError);
    if (code !== 0) {
      const stderr = Buffer.concat(stderrChunks).toString('utf8').trim();
      throw new Error(`${name} exited with code ${code ?? '-'} signal ${signal ?? '-'}: ${stderr || output}`);
    }
    return output;
  } finally {
    clearTimeout(watchdog);
  }
}

/** Wait for the child to exit and collect its stdout. */
async function collectStdout(child: Child): Promise<string> {
  const stdout = child.process.stdout;
  if (!stdout) throw new Error(`${child.name}: stdout is not piped`);
  const chunks: Buffer[] = [];
  stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  await Promise.all([child.exited, once(stdout, 'close').catch(() => undefined)]);
  return Buffer.concat(chunks).toString('utf8');
}
