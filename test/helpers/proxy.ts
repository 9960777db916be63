/** Starts Gatehouse in-process on an ephemeral loopback port, silent, stopped when the test ends. */
import type { TestContext } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { echo, startBackend, type Backend } from './backend.ts';

export interface RunningProxy {
  readonly gatehouse: Gatehouse;
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
}

/**
 * `config` may leave out `listen` (one listener on 127.0.0.1:0) and `access_log` (off).
 */
export async function startProxy(
  t: TestContext,
  config: Omit<ConfigInput, 'listen'> & Partial<Pick<ConfigInput, 'listen'>>,
): Promise<RunningProxy> {
  const full = configFromObject({
    listen: [{ address: '127.0.0.1:0' }],
    access_log: { enabled: false },
    shutdown_timeout: 2000,
    ...config,
  });
  const gatehouse = await Gatehouse.start(full, { logger: pino({ level: 'silent' }) });
  t.after(() => gatehouse.stop(500));
  const port = gatehouse.addresses[0]?.port ?? 0;
  return { gatehouse, port, url: `http://127.0.0.1:${port}` };
}

type UpstreamInput = NonNullable<ConfigInput['upstreams']>[string];

/**
 * The usual shape: one upstream "app" with these servers, one catch-all route to it. `upstream`
 * adds settings of "app" (balance, retries, health_check, ...).
 */
export function simpleProxyConfig(
  servers: readonly (string | { url: string; weight?: number })[],
  upstream: Omit<Partial<UpstreamInput>, 'servers'> | Record<string, unknown> = {},
): Omit<ConfigInput, 'listen'> {
  return {
    upstreams: { app: { servers: servers.map((s) => (typeof s === 'string' ? { url: s } : s)), ...upstream } as UpstreamInput },
    routes: [{ match: {}, upstream: 'app' }],
  };
}

type Routes = NonNullable<ConfigInput['routes']>;

/**
 * An echo backend (see backend.ts) behind a proxy: one upstream "app" on it, these routes (by
 * default one catch-all to it), and `extra` merged into the configuration last.
 */
export async function proxyToEcho(
  t: TestContext,
  routes: Routes = [{ match: {}, upstream: 'app' }],
  extra: Partial<ConfigInput> = {},
): Promise<{ backend: Backend; proxy: RunningProxy }> {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, { upstreams: { app: { servers: [{ url: backend.url }] } }, routes, ...extra });
  return { backend, proxy };
}

/** The protection counters (refused connections and requests, rate limits, bans...) of GET /status. */
export function protectionCounters(proxy: RunningProxy): Record<string, number> {
  return (proxy.gatehouse.status() as { protection: Record<string, number> }).protection;
}
