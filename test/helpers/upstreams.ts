/**
 * Helpers for load-balancing, health and retry tests: many backends, a backend that can be killed
 * and restarted on the same port, a keep-alive client that sends many requests fast, and the
 * proxy's view of its servers.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestContext } from 'node:test';
import { Pool } from 'undici';
import type { Gatehouse } from '../../src/gatehouse.ts';

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Answers with `name` as the body, at once. */
export function named(name: string): Handler {
  return (req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(name) });
      res.end(name);
    });
  };
}

/** Whether a request a backend received is one of the proxy's active health checks. */
export function isHealthCheck(req: IncomingMessage): boolean {
  return req.headers['user-agent'] === 'gatehouse-health-check';
}

/** A backend that can be stopped (every connection cut) and started again on the same port. */
export interface Restartable {
  readonly name: string;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Requests received since the start (health checks included). */
  readonly requests: IncomingMessage[];
  readonly running: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRestartable(t: TestContext, name: string, handler: Handler = named(name)): Promise<Restartable> {
  const requests: IncomingMessage[] = [];
  let server: Server | null = null;
  let port = 0;
  const listen = async (): Promise<void> => {
    const s = createServer((req, res) => {
      requests.push(req);
      handler(req, res);
    });
    s.keepAliveTimeout = 60_000;
    s.listen(port, '127.0.0.1');
    await once(s, 'listening');
    port = (s.address() as AddressInfo).port;
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    if (s === null) return;
    server = null;
    // Stop accepting first, then cut every connection: none can slip in between.
    const closed = new Promise<void>((resolve) => s.close(() => resolve()));
    s.closeAllConnections();
    await closed;
  };
  await listen();
  t.after(stop);
  return {
    name,
    get port() {
      return port;
    },
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    requests,
    get running() {
      return server !== null;
    },
    stop,
    start: listen,
  };
}

export async function startNamedBackends(t: TestContext, count: number, handler?: (name: string) => Handler): Promise<Restartable[]> {
  const backends: Restartable[] = [];
  for (let i = 0; i < count; i++) {
    const name = `b${i}`;
    backends.push(await startRestartable(t, name, handler?.(name)));
  }
  return backends;
}

export interface Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  readonly ms: number;
}

/** A keep-alive client to the proxy, for many requests quickly. Closed when the test ends. */
export function client(t: TestContext, base: string, connections = 16): (path: string, init?: { method?: string; headers?: Record<string, string>; body?: string }) => Promise<Reply> {
  const pool = new Pool(base, { connections, pipelining: 1 });
  t.after(() => pool.destroy());
  return async (path, init = {}) => {
    const started = performance.now();
    const res = await pool.request({ path, method: (init.method ?? 'GET') as 'GET', headers: init.headers ?? {}, body: init.body ?? null });
    const body = await res.body.text();
    return { status: res.statusCode, headers: res.headers, body, ms: performance.now() - started };
  };
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` at a time; results in order. */
export async function runMany<T>(count: number, concurrency: number, task: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(count);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      results[i] = await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return results;
}

/** How many times each value occurs. */
export function tally(values: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
  return counts;
}

export interface ServerView {
  readonly url: string;
  readonly state: 'up' | 'down' | 'ejected' | 'draining';
  readonly in_flight: number;
  readonly requests: number;
  readonly failures: number;
  readonly ewma_ms: number;
  readonly ejections: number;
  readonly ejected_for_ms?: number;
  readonly on_trial?: boolean;
  readonly slow_start_share?: number;
  readonly backup?: boolean;
  readonly last_check: { ok: boolean; detail: string; ms: number; at: string } | null;
}

export interface UpstreamView {
  readonly balance: string;
  readonly in_flight: number;
  readonly queued: number;
  readonly rejected: number;
  readonly available: string[];
  readonly retries: { last_10s: number; requests_last_10s: number; total: number };
  readonly servers: ServerView[];
}

/** The proxy's status of one upstream (what GET /status on the admin listener shows). */
export function upstreamView(gatehouse: Gatehouse, name = 'app'): UpstreamView {
  const status = gatehouse.status() as { upstreams: Record<string, UpstreamView> };
  const upstream = status.upstreams[name];
  if (upstream === undefined) throw new Error(`no upstream ${name}`);
  return upstream;
}

/** The status of the server with this URL. */
export function serverView(gatehouse: Gatehouse, url: string, upstream = 'app'): ServerView {
  const server = upstreamView(gatehouse, upstream).servers.find((s) => s.url === url);
  if (server === undefined) throw new Error(`no server ${url}`);
  return server;
}
