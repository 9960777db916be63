/** A bound address serving HTTP/1.1, with the request limits of the current configuration. */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Config, ListenConfig } from '../config/schema.ts';
import { parseHostPort } from '../config/units.ts';
import { BodyRateWatch } from './body-rate.ts';
import { ConnectionGuard, type ListenerSettings } from './connection-guard.ts';
import { createRequestHandler, type ListenerContext } from './dispatch.ts';
import { createUpgradeHandler } from './upgrade.ts';

export class Listener {
  /** The configured address, e.g. "127.0.0.1:8080". */
  readonly address: string;
  readonly server: Server;
  readonly context: ListenerContext;
  /** Admits or refuses each connection (PROXY protocol, access rules, connection limits). */
  readonly guard: ConnectionGuard;
  /** Request bodies in flight, checked against limits.body_min_rate. */
  readonly bodyWatch = new BodyRateWatch();

  constructor(address: string, limits: Config['limits'], context: ListenerContext, listen?: ListenConfig) {
    this.address = address;
    this.context = context;
    this.server = createServer(
      {
        maxHeaderSize: limits.max_header_size,
        requireHostHeader: true,
        // Timeouts are checked on this interval, so it bounds how late a 408 can be.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.header_timeout / 4))),
        keepAlive: true,
        // A request without Content-Length or Transfer-Encoding gets a body stream that has already
        // ended, instead of one that node:http drains after the answer (~5% of a cache hit).
        optimizeEmptyRequests: true,
      },
      createRequestHandler(context, this.bodyWatch),
    );
    this.server.on('upgrade', createUpgradeHandler(context));
    this.guard = new ConnectionGuard(this.server, context.holder, listenerSettings(limits, listen));
    // Malformed requests are left to node:http's own clientError answer: 400, 408 or 431, then close.
    this.applyLimits(limits, listen);
  }

  /** Limits that can change on a live server (a reload applies them to new requests and connections). */
  applyLimits(limits: Config['limits'], listen?: ListenConfig): void {
    this.guard.apply(listenerSettings(limits, listen));
    // One more than allowed, so that a request with too many lines is seen (and refused with 431)
    // rather than silently cut short by node:http.
    this.server.maxHeadersCount = limits.max_header_count + 1;
    this.server.headersTimeout = limits.header_timeout;
    this.server.requestTimeout = limits.request_timeout;
    this.server.keepAliveTimeout = limits.keepalive_timeout;
    this.server.maxRequestsPerSocket = limits.max_requests_per_connection;
  }

  async listen(): Promise<AddressInfo> {
    const hostPort = parseHostPort(this.address);
    if (hostPort === undefined) throw new Error(`bad listen address ${this.address}`);
    this.server.listen(hostPort.port, hostPort.host);
    await once(this.server, 'listening');
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting; in-flight requests go on. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
    });
  }
}

/** The `listen` entry for `address` in `config`. */
export function listenConfigOf(config: Config, address: string): ListenConfig | undefined {
  return config.listen.find((l) => l.address === address);
}

function listenerSettings(limits: Config['limits'], listen: ListenConfig | undefined): ListenerSettings {
  return {
    proxyProtocol: listen?.proxy_protocol ?? false,
    maxConnections: listen?.max_connections ?? 0,
    headerTimeout: limits.header_timeout,
  };
}
