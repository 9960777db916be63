/** Runs the gatehouse CLI as a child process, for signal and exit-code tests. */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { closedPort } from './backend.ts';
import { waitFor } from './http.ts';

export const CLI = fileURLToPath(new URL('../../src/cli.ts', import.meta.url));

export interface CliProcess {
  readonly child: ChildProcess;
  stdout: string;
  stderr: string;
  readonly exited: Promise<number | null>;
}

/** Spawns `gatehouse ...args` with the Node running the tests (given `nodeArgs`, such as --trace-gc); killed when the test ends. */
export function spawnCli(t: TestContext, args: string[], nodeArgs: readonly string[] = []): CliProcess {
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const proc: CliProcess = {
    child,
    stdout: '',
    stderr: '',
    exited: once(child, 'exit').then(([code]) => code as number | null),
  };
  child.stdout?.on('data', (c: Buffer) => (proc.stdout += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (proc.stderr += c.toString()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return proc;
}

/** Resolves once the process logged that it started. */
export async function waitStarted(proc: CliProcess): Promise<void> {
  await waitFor(() => proc.stderr.includes('gatehouse started') || proc.child.exitCode !== null, 10_000, 'gatehouse to start');
  if (proc.child.exitCode !== null) throw new Error(`gatehouse exited: ${proc.stderr}`);
}

/** A loopback port that was free a moment ago. */
export const freePort = closedPort;

/** Writes `text` to a new file in a temporary folder and returns its path. */
export async function tempFile(name: string, text: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-test-'));
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

/** A new temporary folder, removed (with what is in it) when the test ends. */
export async function tempDir(t: TestContext, prefix = 'gatehouse-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  // Retries: a store still finishing a write may add a file while the folder is removed.
  t.after(() => rm(dir, { recursive: true, force: true, maxRetries: 5 }).catch(() => {}));
  return dir;
}

/** The non-empty lines of the file at `path`, once there are at least `count` (an access log is written after the answer). */
export async function readLines(path: string, count: number): Promise<string[]> {
  let lines: string[] = [];
  await waitFor(async () => {
    const text = await readFile(path, 'utf8').catch(() => '');
    lines = text.split('\n').filter(Boolean);
    return lines.length >= count;
  }, 5000, `${count} access log lines`);
  return lines;
}
