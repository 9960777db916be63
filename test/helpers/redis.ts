/**
 * A real `redis-server` for tests: started on a free loopback port (port 0 would turn its TCP
 * listener off), without persistence, stopped when the test ends. Helpers kill, restart and pause
 * it (SIGSTOP: a Redis that answers nothing, as a slow or hung one would).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import assert from 'node:assert/strict';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { RedisConfig } from '../../src/config/state-schema.ts';
import { loadRedisClient, RedisState } from '../../src/core/redis-state.ts';
import { closedPort } from './backend.ts';
import { waitFor } from './http.ts';

/** Why Redis tests are skipped on this machine, or null when redis-server is there. */
export const redisMissing: string | null = (() => {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return probe.error === undefined && probe.status === 0 ? null : 'redis-server is not installed (apt-get install redis-server); Redis tests skipped';
})();

/** Why Cluster tests are skipped (they need redis-cli to create the cluster), or null. */
export const redisCliMissing: string | null = (() => {
  if (redisMissing !== null) return redisMissing;
  const probe = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
  return probe.error === undefined && probe.status === 0 ? null : 'redis-cli is not installed (apt-get install redis-tools); Redis Cluster test skipped';
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
    child = spawn('redis-server', [...serverArgs(port), '--protected-mode', 'no'], { stdio: 'ignore' });
    await answering(port, `redis-server on port ${port}`);
  };
  const kill = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running !== null) await stop(running);
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

/** A throwaway server's arguments: `port` on loopback, no persistence. */
function serverArgs(port: number): string[] {
  return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
}

/** Resolves once the server on `port` answers PING (10 s at most). */
function answering(port: number, what: string): Promise<void> {
  return waitFor(async () => (await ping(port)) === '+PONG', 10_000, what);
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

/** SIGKILL (no goodbye to its clients; SIGCONT first, for a paused one); resolves once it has exited. */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGCONT');
  child.kill('SIGKILL');
  await exited;
}

/** A process started for a test, killed in its after hook. */
function spawnKilled(t: Cleanup, args: string[], cwd: string): void {
  const child = spawn('redis-server', args, { stdio: 'ignore', cwd });
  t.after(() => stop(child));
}

/** A folder for a server's files, removed after the test. */
function scratch(t: Cleanup): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A Redis Cluster of three primaries (no replicas) on free loopback ports; resolves with their
 * "host:port" once the cluster says it is ok.
 */
export async function startRedisCluster(t: Cleanup): Promise<string[]> {
  const dir = scratch(t);
  const ports = [await closedPort(), await closedPort(), await closedPort()];
  for (const port of ports) {
    spawnKilled(t, [...serverArgs(port), '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`], dir);
  }
  for (const port of ports) await answering(port, `cluster node ${port}`);
  const nodes = ports.map((port) => `127.0.0.1:${port}`);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-yes'], { encoding: 'utf8', timeout: 20_000 });
  if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  await waitFor(async () => (await send(ports[0] as number, 'CLUSTER INFO').catch(() => '')).includes('cluster_state:ok'), 10_000, 'the cluster');
  return nodes;
}

/** A Redis primary watched by one Sentinel as "gatehouse"; resolves with the Sentinel's "host:port". */
export async function startRedisWithSentinel(t: Cleanup): Promise<{ sentinel: string; primary: number }> {
  const dir = scratch(t);
  const primary = await closedPort();
  spawnKilled(t, serverArgs(primary), dir);
  await answering(primary, `redis-server on port ${primary}`);
  const sentinelPort = await closedPort();
  const file = join(dir, 'sentinel.conf');
  writeFileSync(file, `port ${sentinelPort}\nbind 127.0.0.1\nsentinel monitor gatehouse 127.0.0.1 ${primary} 1\n`);
  spawnKilled(t, [file, '--sentinel'], dir);
  await waitFor(async () => (await send(sentinelPort, 'SENTINEL get-master-addr-by-name gatehouse').catch(() => '')).includes(String(primary)), 10_000, 'the sentinel');
  return { sentinel: `127.0.0.1:${sentinelPort}`, primary };
}

/**
 * A RedisState on `url` as `state.redis` compiles it (key prefix `prefix`, a 1 s timeout, `over`
 * merged in), once it is connected (it starts degraded until then); the caller closes it.
 */
export async function connectedRedisState(url: string, prefix: string, over: Record<string, unknown> = {}): Promise<{ state: RedisState; config: RedisConfig }> {
  const config = configFromObject({ listen: [{ address: '127.0.0.1:0' }], state: { redis: { url, key_prefix: prefix, timeout: '1s', ...over } } }).state.redis;
  assert.ok(config !== undefined);
  await loadRedisClient();
  const state = new RedisState(config, pino({ level: 'silent' }));
  assert.ok(await state.whenAvailable(5000), 'redis reachable');
  return { state, config };
}
