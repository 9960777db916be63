// Start a server process (pinned to a core, or not), wait until it answers, stop it.
import { readFileSync } from 'node:fs';
import { spawnChild, stopChild } from './children.ts';
import type { Child } from './children.ts';
import { closeLog, openLog, tail } from './logs.ts';
import { HOST } from './ports.ts';
import { waitUntilReady } from './probe.ts';
import type { Launch } from './proxies.ts';
import { pinned } from './tools.ts';

export interface ServiceOptions {
  name: string;
  launch: Launch;
  port: number;
  /** The scheme of its listener: readiness is polled with it. */
  scheme: 'http' | 'https';
  /** Its core, or null: not pinned (the multicore scenario's processes). */
  core: number | null;
  taskset: string | undefined;
  cwd: string;
  logDir: string;
  /** Path polled until it answers 200. */
  readyPath: string;
  readyTimeoutMs: number;
}

export interface Service {
  name: string;
  port: number;
  child: Child;
  url(path: string): string;
  stop(): Promise<void>;
}

export class StartError extends Error {
  readonly details: string;
  constructor(message: string, details: string) {
    super(message);
    this.name = 'StartError';
    this.details = details;
  }
}

export async function startService(options: ServiceOptions): Promise<Service> {
  const { name, launch, port } = options;
  const stderr = openLog(options.logDir, `${name}.stderr.log`);
  const { command, args } = pinned(options.taskset, options.core, launch.command, launch.args);
  // stdout (e.g. an access log) goes to /dev/null: reading it here would cost CPU.
  const env = launch.env === undefined ? process.env : { ...process.env, ...launch.env };
  const child = spawnChild(name, command, args, { cwd: options.cwd, env, stdio: ['ignore', 'ignore', stderr.fd] });
  closeLog(stderr.fd); // the child holds its own copy
  const stop = async (): Promise<void> => {
    await stopChild(child);
    launch.cleanup();
  };
  const url = (path: string): string => `${options.scheme}://${HOST}:${port}${path}`;
  try {
    // The line first, then the port: a Gatehouse primary with workers holds the port open (to
    // check it) until every worker serves, and never answers a connection that reaches it then.
    const deadline = Date.now() + options.readyTimeoutMs;
    if (launch.readyLine !== undefined) await waitForLine(stderr.path, launch.readyLine, child, deadline);
    await waitUntilReady(url(options.readyPath), child, Math.max(0, deadline - Date.now()));
  } catch (error) {
    await stopChild(child);
    const details = [stderr.path, ...launch.logFiles]
      .map((file) => tail(file))
      .filter((text) => text.length > 0)
      .join('\n');
    launch.cleanup();
    throw new StartError(error instanceof Error ? error.message : String(error), details);
  }
  return { name, port, child, url, stop };
}

/** Poll the child's stderr log until a line matches `line` (e.g. every worker listens), the child exits, or `deadline`. */
async function waitForLine(path: string, line: RegExp, child: Child, deadline: number): Promise<void> {
  while (Date.now() < deadline) {
    if (child.hasExited()) throw new Error(`exited before logging ${line}`);
    if (line.test(readFileSync(path, 'utf8'))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`did not log ${line} in time (not every worker started?)`);
}
