import { buildConnector, Pool, type Dispatcher } from 'undici';
import type { UpstreamConfig } from '../config/schema.ts';
import { sniFor, type BackendTls } from './backend-tls.ts';

/** Dispatch options with `servername`, which undici reads (lib/core/request.js) but does not declare. */
export type NamedDispatchOptions = Dispatcher.DispatchOptions & { readonly servername: string };

/** The transport options that decide whether two servers can share one connection pool. */
export interface PoolOptions {
  readonly connectTimeout: number;
  readonly connections: number;
  readonly keepAliveTimeout: number;
  /** TLS settings for https:// servers; null for http:// ones. */
  readonly tls: BackendTls | null;
}

/** The pool options of an upstream's servers; `tls` applies to its https:// ones only (see optionsForOrigin). */
export function poolOptionsOf(upstream: UpstreamConfig, tls: BackendTls | null): PoolOptions {
  return {
    connectTimeout: upstream.timeouts.connect,
    connections: upstream.keepalive.connections,
    keepAliveTimeout: upstream.keepalive.idle_timeout,
    tls,
  };
}

/** The options for one server: an http:// server ignores TLS settings (so that a change to them keeps its pool). */
export function optionsForOrigin(url: URL, options: PoolOptions): PoolOptions {
  return url.protocol === 'https:' || options.tls === null ? options : { ...options, tls: null };
}

/** The registry key: pools are kept across reloads while origin and options (TLS files' contents included) stay the same. */
export function poolKey(origin: string, options: PoolOptions): string {
  return `${origin}|${options.connectTimeout}|${options.connections}|${options.keepAliveTimeout}|${options.tls?.id ?? ''}`;
}

/** A keep-alive HTTP/1.1 connection pool to one server. */
export function createPool(origin: string, options: PoolOptions): Pool {
  const tls = options.tls;
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
    ...(tls === null ? {} : { connect: tlsConnector(tls, new URL(origin).hostname, options.connectTimeout) }),
  });
}

/**
 * Opens TLS connections to one server. undici takes the SNI name of a connection from the Host
 * header of the request that opens it, which for a proxy is the client's Host: the name would be
 * one the backend's certificate may not hold, and would change (closing the connection) with each
 * client. The connector sends the configured name instead, or the URL's host, or none for an IP
 * address; forward.ts passes each server's constant `servername` on its dispatches so that undici
 * sees one name per pool and keeps its connections.
 */
function tlsConnector(tls: BackendTls, hostname: string, timeout: number): buildConnector.connector {
  const sni = sniFor(tls, hostname);
  const options: buildConnector.BuildOptions = { rejectUnauthorized: tls.verify, timeout, allowH2: false };
  // (allowH2: HTTP/1.1 only; undici 8 offers h2 by ALPN unless told not to.)
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  if (sni !== undefined) options.servername = sni;
  const base = buildConnector(options);
  if (sni === undefined) {
    return (options, callback) => {
      const { servername: _fromHost, ...rest } = options;
      base(rest, callback);
    };
  }
  return (options, callback) => base({ ...options, servername: sni }, callback);
}
