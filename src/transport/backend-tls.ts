/**
 * TLS to backends: an upstream's TLS settings (files read by src/config/backend-tls-files.ts)
 * turned into the options of `tls.connect` for one https:// server. The same options serve the
 * request pools (src/transport/pool.ts) and the health checks.
 */
import { isIP } from 'node:net';
import type { ConnectionOptions } from 'node:tls';
import type { BackendTls } from '../config/backend-tls-files.ts';

/**
 * The name sent in SNI to a server: the configured one, else the URL's host name; none for an IP
 * address (RFC 6066 §3 allows only DNS names), whose certificate is then checked for that address.
 */
export function sniFor(tls: BackendTls, hostname: string): string | undefined {
  return tls.servername ?? (isIP(hostname) === 0 ? hostname : undefined);
}

/** The TLS part of the `tls.connect` options of a connection to a server. */
export type BackendConnectOptions = Pick<ConnectionOptions, 'rejectUnauthorized' | 'servername' | 'ca' | 'cert' | 'key'>;

/** The `tls.connect` options for one server (host and port aside), for the request pools and the health checks. */
export function connectOptionsFor(tls: BackendTls, hostname: string): BackendConnectOptions {
  const options: BackendConnectOptions = { rejectUnauthorized: tls.verify };
  const sni = sniFor(tls, hostname);
  // An empty name tells node:https to send none rather than take one from the Host header.
  options.servername = sni ?? '';
  if (tls.ca !== undefined) options.ca = tls.ca;
  if (tls.cert !== undefined) options.cert = tls.cert;
  if (tls.key !== undefined) options.key = tls.key;
  return options;
}
