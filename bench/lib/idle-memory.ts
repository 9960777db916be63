// The tls-idle-memory scenario: the proxy's resident memory before and after N idle TLS
// connections (each one after a full handshake and one request), per connection.
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Interface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnChild, stopChild } from './children.ts';
import type { Child } from './children.ts';
import { groupRssKiB } from './memory.ts';
import { pinned } from './tools.ts';

export interface IdleMemoryResult {
  connections: number;
  rssBeforeKiB: number;
  rssAfterKiB: number;
  perConnectionKiB: number;
}

export interface IdleMemoryRun {
  /** Node 24 and the repository root: the idle client is a Node script (bench/idle-client.ts). */
  node: string;
  root: string;
  taskset: string | undefined;
  /** The client's core (the load core). */
  core: number;
  url: string;
  connections: number;
  /** The proxy's process group (its pid): every process in it is counted. */
  proxyGroup: number;
}

/** Connections opened and closed first, so that the "before" reading has TLS and the code paths warm. */
const WARMUP_CONNECTIONS = 200;
/** Pause before each reading, for the proxy to finish with the connections' setup. */
const SETTLE_MS = 1000;
const OPEN_TIMEOUT_MS = 120_000;

function nextLine(lines: Interface, child: Child, timeoutMs: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`idle client: no ${what} within ${timeoutMs / 1000} s`)), timeoutMs);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve(line);
    });
    void child.exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`idle client exited (code ${code ?? '-'}) before its ${what}`));
    });
  });
}

interface Opened {
  child: Child;
  lines: Interface;
  /** Lines the client printed after its connections were open. */
  later: string[];
}

/** Start the client and wait until its connections are open and idle. */
async function openIdle(run: IdleMemoryRun, connections: number): Promise<Opened> {
  const script = join(run.root, 'bench', 'idle-client.ts');
  const { command, args } = pinned(run.taskset, run.core, run.node, [script, '--url', run.url, '--connections', String(connections)]);
  const child = spawnChild('idle-client', command, args, { cwd: run.root, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.process.stdout! });
  try {
    const ready = JSON.parse(await nextLine(lines, child, OPEN_TIMEOUT_MS, 'connections')) as { open: number; failed: number; firstError: string | null };
    if (ready.failed > 0) throw new Error(`${ready.failed} of ${connections} TLS connections failed (first: ${ready.firstError ?? '?'})`);
    const later: string[] = [];
    lines.on('line', (line) => later.push(line));
    return { child, lines, later };
  } catch (error) {
    await stopChild(child);
    throw error;
  }
}

/** Stop the client; returns how many connections the proxy closed while they were idle. */
async function closeIdle({ child, lines, later }: Opened): Promise<number> {
  const ended = once(lines, 'close');
  await stopChild(child);
  await Promise.race([ended, sleep(2000)]);
  const { closedWhileIdle } = JSON.parse(later.at(-1) ?? '{}') as { closedWhileIdle?: number };
  return closedWhileIdle ?? 0;
}

export async function measureIdleMemory(run: IdleMemoryRun): Promise<IdleMemoryResult> {
  await closeIdle(await openIdle(run, WARMUP_CONNECTIONS));
  await sleep(SETTLE_MS);
  const rssBeforeKiB = groupRssKiB(run.proxyGroup);
  const opened = await openIdle(run, run.connections);
  let rssAfterKiB: number;
  try {
    await sleep(SETTLE_MS);
    rssAfterKiB = groupRssKiB(run.proxyGroup);
  } finally {
    const closed = await closeIdle(opened);
    if (closed > 0) throw new Error(`the proxy closed ${closed} of ${run.connections} idle connections during the measurement (keep-alive timeout too short?)`);
  }
  return { connections: run.connections, rssBeforeKiB, rssAfterKiB, perConnectionKiB: (rssAfterKiB - rssBeforeKiB) / run.connections };
}
