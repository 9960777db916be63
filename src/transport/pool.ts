import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';
import type { BackendTls } from '../config/backend-tls-files.ts';
import { connectOptionsFor, sniFor } from './backend-tls.ts';

/** Dispatch options with `servername`, which undici reads (lib/core/request.js) but does not declare. */
export type NamedDispatchOptions = Dispatcher.DispatchOptions & { readonly servername: string };

/** The transport options that decide whether two servers can share one connection pool. */
export interface PoolOptions {
  readonly connectTimeout: number;
  readonly connections: number;
  readonly keepAliveTimeout: number;
  /** TLS settings for https:// servers; null for http:// ones. */
  readonly tls: BackendTls | null;
  /** HTTP/1.1, HTTP/2 over TLS (ALPN) or HTTP/2 with prior knowledge. */
  readonly protocol: UpstreamConfig['protocol'];
}

/** The pool options of an upstream's servers; `tls` applies to its https:// ones only (see optionsForOrigin). */
export function poolOptionsOf(upstream: UpstreamConfig, tls: BackendTls | null): PoolOptions {
  return {
    connectTimeout: upstream.timeouts.connect,
    connections: upstream.keepalive.connections,
    keepAliveTimeout: upstream.keepalive.idle_timeout,
    tls,
    protocol: upstream.protocol,
  };
}

/** The options for one server: an http:// server ignores TLS settings (so that a change to them keeps its pool). */
export function optionsForOrigin(url: URL, options: PoolOptions): PoolOptions {
  return url.protocol === 'https:' || options.tls === null ? options : { ...options, tls: null };
}

/** The registry key: pools are kept across reloads while origin and options (TLS files' contents included) stay the same. */
export function poolKey(origin: string, options: PoolOptions): string {
  return `${origin}|${options.connectTimeout}|${options.connections}|${options.keepAliveTimeout}|${options.tls?.id ?? ''}|${options.protocol}`;
}

/**
 * A keep-alive connection pool to one server: HTTP/1.1 connections (one request at a time each),
 * or HTTP/2 ones (many streams each, up to the server's SETTINGS_MAX_CONCURRENT_STREAMS).
 */
export function createPool(origin: string, options: PoolOptions): Pool {
  const tls = options.tls;
  const protocol = options.protocol;
  const settings: Pool.Options & { useH2c?: boolean } = {
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
    // undici 8 would offer h2 by ALPN on every TLS connection: only when asked for here.
    allowH2: protocol !== 'http1',
  };
  // Pool reads a top-level `useH2c` (its types only declare h2Options.useH2c, which Pool ignores).
  if (protocol === 'h2c') settings.useH2c = true;
  if (tls !== null) settings.connect = tlsConnector(tls, new URL(origin).hostname, options.connectTimeout, protocol === 'h2');
  return new Pool(origin, settings);
}

/**
 * Opens TLS connections to one server. undici takes the SNI name of a connection from the Host
 * header of the request that opens it, which for a proxy is the client's Host: the name would be
 * one the backend's certificate may not hold, and would change (closing the connection) with each
 * client. The connector sends the configured name instead, or the URL's host, or none for an IP
 * address; forward.ts passes each server's constant `servername` on its dispatches so that undici
 * sees one name per pool and keeps its connections.
 */
function tlsConnector(tls: BackendTls, hostname: string, timeout: number, h2: boolean): buildConnector.connector {
  const sni = sniFor(tls, hostname);
  // ALPN: "h2" first for protocol h2 (a server without HTTP/2 may still choose http/1.1), else "http/1.1" only.
  const base = buildConnector({ ...connectOptionsFor(tls, hostname), timeout, allowH2: h2, preferH2: h2 });
  if (sni === undefined) {
    return (options, callback) => {
      const { servername: _fromHost, ...rest } = options;
      base(rest, callback);
    };
  }
  return (options, callback) => base({ ...options, servername: sni }, callback);
}
