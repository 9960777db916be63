/** A bound address serving HTTP/1.1, with the request limits of the current configuration. */
import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.ts';
import { parseHostPort } from '../config/units.ts';
import { createRequestHandler, type ListenerContext } from './dispatch.ts';
import { createUpgradeHandler } from './upgrade.ts';

export class Listener {
  /** The configured address, e.g. "127.0.0.1:8080". */
  readonly address: string;
  readonly server: Server;
  readonly context: ListenerContext;

  constructor(address: string, limits: Config['limits'], context: ListenerContext) {
    this.address = address;
    this.context = context;
    this.server = createServer(
      {
        maxHeaderSize: limits.max_header_size,
        requireHostHeader: true,
        // Timeouts are checked on this interval, so it bounds how late a 408 can be.
        connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.header_timeout / 4))),
        keepAlive: true,
      },
      createRequestHandler(context),
    );
    this.server.on('upgrade', createUpgradeHandler(context));
    // Malformed requests are left to node:http's own clientError answer: 400, 408 or 431, then close.
    this.applyLimits(limits);
  }

  /** Limits that can change on a live server (a reload applies them to new requests). */
  applyLimits(limits: Config['limits']): void {
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
