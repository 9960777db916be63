import { Pool } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';

/** The transport options that decide whether two servers can share one connection pool. */
export interface PoolOptions {
  readonly connectTimeout: number;
  readonly connections: number;
  readonly keepAliveTimeout: number;
}

export function poolOptionsOf(upstream: UpstreamConfig): PoolOptions {
  return {
    connectTimeout: upstream.timeouts.connect,
    connections: upstream.keepalive.connections,
    keepAliveTimeout: upstream.keepalive.idle_timeout,
  };
}

/** The registry key: pools are kept across reloads while origin and options stay the same. */
export function poolKey(origin: string, options: PoolOptions): string {
  return `${origin}|${options.connectTimeout}|${options.connections}|${options.keepAliveTimeout}`;
}

/** A keep-alive HTTP/1.1 connection pool to one server. */
export function createPool(origin: string, options: PoolOptions): Pool {
  return new Pool(origin, {
    connections: options.connections,
    pipelining: 1,
    connectTimeout: options.connectTimeout,
    keepAliveTimeout: options.keepAliveTimeout,
    keepAliveMaxTimeout: Math.max(options.keepAliveTimeout, 600_000),
    // Per-request timeouts are set on each dispatch from the upstream's configuration.
    headersTimeout: 0,
    bodyTimeout: 0,
    // Backends may send large cookies; the client limit is enforced at the listener.
    maxHeaderSize: 64 * 1024,
  });
}
