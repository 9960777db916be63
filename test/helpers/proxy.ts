/** Starts Gatehouse in-process on an ephemeral loopback port, silent, stopped when the test ends. */
import type { TestContext } from 'node:test';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';

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

/** The usual shape: one upstream "app" with these servers, one catch-all route to it. */
export function simpleProxyConfig(servers: (string | { url: string; weight?: number })[]): Omit<ConfigInput, 'listen'> {
  return {
    upstreams: { app: { servers: servers.map((s) => (typeof s === 'string' ? { url: s } : s)) } },
    routes: [{ match: {}, upstream: 'app' }],
  };
}
