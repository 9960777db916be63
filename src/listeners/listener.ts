/**
 * A bound address and the protocols it speaks. A connection is admitted by the connection guard
 * first (PROXY protocol, bans, connection limits: before any TLS work), then:
 *
 *   plain:            → HTTP/1.1 (node:http), or HTTP/2 when `h2c` and the preface says so
 *   TLS:  handshake   → by ALPN: h2 → HTTP/2 (node:http2), anything else → HTTP/1.1
 *
 * The HTTP/1.1 server is the listening one (node:https on TLS listeners), so that node:http's own
 * limits and connection tracking apply as on plain listeners; the HTTP/2 server never listens and
 * is handed the connections that chose it. Requests of both go through the same dispatch.
 */
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { once } from 'node:events';
import { Server as NetServer, type AddressInfo, type Socket } from 'node:net';
import type { Server as TlsServer, TLSSocket, TlsOptions } from 'node:tls';
import type { Config, ListenConfig } from '../config/schema.ts';
import { parseHostPort } from '../config/units.ts';
import { BodyRateWatch } from './body-rate.ts';
import { CONNECTION, ConnectionGuard, takeConnectionListener, type GuardedSocket, type ListenerSettings, type NextStep } from './connection-guard.ts';
import { createHttp2Handler, createRequestHandler, type ListenerContext } from './dispatch.ts';
import { sniffPreface } from './h2c.ts';
import { compileHttpsPolicy } from './https-policy.ts';
import { createH2WebSocketHandler } from './h2-websocket.ts';
import { Http2Front } from './http2.ts';
import { peekFirstBytes } from './peek.ts';
import { HELLO, readClientHello, type HelloFacts } from './tls/client-hello.ts';
import { createUpgradeHandler, isWebSocketUpgrade } from './upgrade.ts';

/** What a TLS listener is given by the certificate side (listeners/tls/). */
export interface ListenerTls {
  /** Certificates (SNICallback or cert/key), versions, ciphers, client authentication. */
  readonly options: TlsOptions;
  /** Called once with the listening server (OCSP stapling, session ticket keys). */
  attach(server: TlsServer): void;
  /** The certificate depends on the ClientHello (ECDSA and RSA for one name): read it before the handshake. */
  readonly needsClientHello: boolean;
}

export class Listener {
  /** The configured address, e.g. "127.0.0.1:8080". */
  readonly address: string;
  /** The listening server: node:http, or node:https on a TLS listener. */
  readonly server: Server;
  readonly context: ListenerContext;
  /** Admits or refuses each connection (PROXY protocol, access rules, connection limits). */
  readonly guard: ConnectionGuard;
  /** Request bodies in flight, checked against limits.body_min_rate. */
  readonly bodyWatch = new BodyRateWatch();
  /** HTTP/2 connections (TLS with ALPN, or h2c when the settings allow them). */
  readonly http2: Http2Front;
  /** Terminates TLS (a reload that adds or removes `tls` binds the address anew). */
  readonly tls: boolean;
  /** TLS handshakes completed and failed, for /metrics. */
  readonly tlsCounters = { handshakes: 0, failures: 0 };
  /** Bytes read from and written to closed connections, on the wire (TLS included), for /metrics. */
  readonly byteCounters = { in: 0, out: 0 };
  #settings: ListenConfig;

  constructor(address: string, limits: Config['limits'], context: ListenerContext, listen: ListenConfig, tls: ListenerTls | null = null) {
    this.address = address;
    this.context = context;
    this.#settings = listen;
    const handler = createRequestHandler(context, this.bodyWatch);
    const httpOptions = {
      maxHeaderSize: limits.max_header_size,
      requireHostHeader: true,
      // Timeouts are checked on this interval, so it bounds how late a 408 can be.
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.header_timeout / 4))),
      keepAlive: true,
      // A request without Content-Length or Transfer-Encoding gets a body stream that has already
      // ended, instead of one that node:http drains after the answer (~5% of a cache hit).
      optimizeEmptyRequests: true,
      // Only WebSocket switches protocols; any other Upgrade (h2c from `curl --http2`) is served
      // as the HTTP/1.1 request it also is (RFC 9113 §3.1 dropped the h2c upgrade).
      shouldUpgradeCallback: isWebSocketUpgrade,
    };
    // Made whatever the settings say, so that a reload can turn h2c or http2 on and off.
    const http2 = new Http2Front(listen.http2, limits, createHttp2Handler(context, this.bodyWatch), createH2WebSocketHandler(context));
    this.http2 = http2;
    this.tls = tls !== null;
    let next: NextStep;
    if (tls === null) {
      this.server = createHttpServer(httpOptions, handler);
      const http1 = takeConnectionListener(this.server);
      next = (socket) => {
        if (this.#settings.h2c) sniffPreface(socket, this.server.headersTimeout, (s) => http2.accept(s), http1);
        else http1(socket);
      };
    } else {
      const server = createHttpsServer({ ...httpOptions, ...tls.options, ALPNCallback: (hello) => this.#alpn(hello.protocols) }, handler);
      this.server = server;
      this.#splitByAlpn(server);
      tls.attach(server);
      const tlsConnection = takeConnectionListener(server);
      // node:tls feeds what the TCP socket has buffered (bytes after a PROXY header, a ClientHello
      // read here) to the handshake first, but only from a paused socket.
      const handshake: NextStep = (socket) => {
        socket.pause();
        tlsConnection(socket);
      };
      next = (socket) => {
        if (!tls.needsClientHello) handshake(socket);
        else peekFirstBytes(socket, this.server.headersTimeout, readClientHello, (facts, received) => {
          (socket as Socket & { [HELLO]?: HelloFacts })[HELLO] = facts;
          socket.unshift(received);
          handshake(socket);
        });
      };
    }
    this.server.on('upgrade', createUpgradeHandler(context));
    // Counted when a connection closes: once per connection, nothing per request.
    const bytes = this.byteCounters;
    const countBytes = function (this: Socket): void {
      bytes.in += this.bytesRead;
      bytes.out += this.bytesWritten;
    };
    this.server.on('connection', (socket: Socket) => socket.once('close', countBytes));
    this.guard = new ConnectionGuard(this.server, context.holder, listenerSettings(limits, listen), next);
    // Malformed requests are left to node:http's own clientError answer: 400, 408 or 431, then close.
    this.applyLimits(limits, listen);
  }

  /** Limits that can change on a live server (a reload applies them to new requests and connections). */
  applyLimits(limits: Config['limits'], listen: ListenConfig): void {
    this.#settings = listen;
    this.context.https = compileHttpsPolicy(listen);
    this.guard.apply(listenerSettings(limits, listen));
    // One more than allowed, so that a request with too many lines is seen (and refused with 431)
    // rather than silently cut short by node:http.
    this.server.maxHeadersCount = limits.max_header_count + 1;
    this.server.headersTimeout = limits.header_timeout;
    this.server.requestTimeout = limits.request_timeout;
    this.server.keepAliveTimeout = limits.keepalive_timeout;
    this.server.maxRequestsPerSocket = limits.max_requests_per_connection;
    this.http2.apply(listen.http2, limits);
  }

  /**
   * Binds the address; `reusePort` lets several workers bind the same one (SO_REUSEPORT).
   * `inherited`: the listening socket a process being replaced handed over (upgrade/), served
   * instead of binding, so that no connection waiting in its accept queue is lost.
   */
  async listen(reusePort = false, inherited?: NetServer): Promise<AddressInfo> {
    const hostPort = parseHostPort(this.address);
    if (hostPort === undefined) throw new Error(`bad listen address ${this.address}`);
    if (inherited === undefined) this.server.listen({ port: hostPort.port, host: hostPort.host, reusePort });
    else takeOver(this.server, inherited);
    await once(this.server, 'listening');
    return this.server.address() as AddressInfo;
  }

  /** Stops accepting; in-flight requests go on, HTTP/2 clients are told to open no new streams. */
  stopAccepting(): Promise<void> {
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      this.server.closeIdleConnections();
      this.http2.closeAll();
    });
  }

  /**
   * Stops accepting while another process serves the same listening socket (an upgrade): unlike
   * stopAccepting(), connections that carry no request now are left open, since one just
   * accepted, or a keep-alive one the client is writing its next request on, may have a request
   * on its way that closing would turn into a client error. Each is answered with Connection:
   * close (the listener is draining) or closed by the keep-alive timeout node:http announces in
   * Keep-Alive. Resolves once every connection has ended.
   */
  handOver(): Promise<void> {
    return new Promise((resolve) => {
      // node:http's close() (which would close idle connections at once) is skipped for the
      // socket's own: the header and request timeouts go on being checked.
      NetServer.prototype.close.call(this.server, () => resolve());
      this.http2.closeAll();
    });
  }

  /** Closes connections that carry no request now (called while draining). */
  closeIdleConnections(): void {
    this.server.closeIdleConnections();
    this.http2.closeIdle();
  }

  /** Cuts every connection (the shutdown deadline passed). */
  closeAllConnections(): void {
    this.server.closeAllConnections();
    this.http2.destroyAll();
  }

  /** RFC 7301: h2 when offered and enabled, else HTTP/1.1; a client offering neither is refused. */
  #alpn(offered: readonly string[]): string | undefined {
    if (this.#settings.http2.enabled && offered.includes('h2')) return 'h2';
    return offered.includes('http/1.1') ? 'http/1.1' : undefined;
  }

  /**
   * node:https hands every TLS connection to node:http; the ones that chose h2 go to the HTTP/2
   * server instead. The guard's record moves from the TCP socket to the TLS one.
   */
  #splitByAlpn(server: TlsServer): void {
    const [http1] = server.listeners('secureConnection') as ((socket: TLSSocket) => void)[];
    if (http1 === undefined) throw new Error('node:https secureConnection listener not found');
    server.removeListener('secureConnection', http1);
    server.on('tlsClientError', () => this.tlsCounters.failures++);
    server.on('secureConnection', (socket: TLSSocket) => {
      this.tlsCounters.handshakes++;
      const parent = (socket as TLSSocket & { _parent?: GuardedSocket })._parent;
      if (parent?.[CONNECTION] !== undefined) (socket as GuardedSocket)[CONNECTION] = parent[CONNECTION];
      if (socket.alpnProtocol === 'h2') this.http2.accept(socket);
      else http1.call(server, socket);
    });
  }
}

/**
 * Makes `server` listen on the socket `inherited` holds. `inherited` came over the IPC channel
 * already listening (node:child_process made it a net.Server); a connection it accepted before
 * `server` took the socket over is passed on rather than left unanswered.
 */
export function takeOver(server: Server | NetServer, inherited: NetServer): void {
  server.listen(inherited);
  inherited.on('connection', (socket: Socket) => server.emit('connection', socket));
}

function listenerSettings(limits: Config['limits'], listen: ListenConfig): ListenerSettings {
  return {
    proxyProtocol: listen.proxy_protocol,
    maxConnections: listen.max_connections,
    headerTimeout: limits.header_timeout,
  };
}
