/**
 * The connection guard: admits or refuses each accepted socket before node:http sees it, once per
 * connection rather than once per request. It stands between the listening socket and
 * node:http's own 'connection' handler, and does, as configured:
 *
 * - read a PROXY protocol header (v1/v2) first, from trusted proxies only, for the client address;
 * - refuse banned clients and clients the global access rules deny (closed at once, or marked so
 *   that each request gets 403 with `on_deny: 403`);
 * - cap the connections one client holds open (`max_connections_per_client`).
 *
 * A listener's total (`max_connections`) is node:net's `maxConnections`, which closes a connection
 * past it before any JavaScript runs. With nothing configured, a socket goes straight to node:http.
 */
import type { Server, Socket } from 'node:net';
import type { ProtectionState } from '../core/protection-state.ts';
import type { SnapshotHolder } from '../core/snapshot.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { clientKey } from '../middleware/ip-filter/ip-address.ts';
import type { ProtectionPolicy } from '../middleware/protection.ts';
import { peekFirstBytes } from './peek.ts';
import { parseProxyHeader } from './proxy-protocol.ts';

export const CONNECTION = Symbol('gatehouse.connection');

/** What the guard learnt about a connection; dispatch reads it for each request. */
export interface ConnectionState {
  /** The peer: the socket's address, or the client a PROXY header named. */
  readonly address: string;
  /** The peer is a trusted proxy without a PROXY header: the client is named per request (X-Forwarded-For). */
  readonly forwarded: boolean;
  /** `on_deny: 403`: every request on this connection is answered 403, then it closes. */
  denied: boolean;
  /** The access-rule generation this connection was last checked against; -1 for never. */
  checkedGeneration: number;
  /** The key it is counted under for `max_connections_per_client`; '' when not counted. */
  key: string;
  readonly state: ProtectionState;
}

/** A socket the guard has looked at. */
export type GuardedSocket = Socket & { [CONNECTION]?: ConnectionState };

/** The listener's own settings (from its `listen` entry and `limits`). */
export interface ListenerSettings {
  readonly proxyProtocol: boolean;
  readonly maxConnections: number;
  /** Longest wait for a PROXY header. */
  readonly headerTimeout: number;
}

/** Where an admitted connection goes next (node:http, TLS, or the h2c preface check). */
export type NextStep = (socket: Socket) => void;

/**
 * Removes the connection handler that node:http (or node:tls) registered in the server's
 * constructor and returns it bound to the server, for the guard to call once it admits a socket.
 */
export function takeConnectionListener(server: Server): NextStep {
  const [listener] = server.listeners('connection') as ((this: Server, socket: Socket) => void)[];
  if (listener === undefined) throw new Error('the server has no connection listener to take over');
  server.removeListener('connection', listener);
  return (socket) => listener.call(server, socket);
}

export class ConnectionGuard {
  readonly #server: Server;
  readonly #holder: SnapshotHolder;
  readonly #next: NextStep;
  #settings: ListenerSettings;

  /** `next` is the server's own connection handler (see takeConnectionListener), or a step before it. */
  constructor(server: Server, holder: SnapshotHolder, settings: ListenerSettings, next: NextStep) {
    this.#server = server;
    this.#holder = holder;
    this.#settings = settings;
    this.#next = next;
    server.on('connection', (socket: Socket) => this.#accept(socket));
    server.on('drop', () => this.#holder.current.protection.state.counters.listener_connection_limit++);
    this.apply(settings);
  }

  /** Settings that a reload may change; they apply to connections accepted from now on. */
  apply(settings: ListenerSettings): void {
    this.#settings = settings;
    this.#server.maxConnections = settings.maxConnections > 0 ? settings.maxConnections : Number.POSITIVE_INFINITY;
  }

  #accept(socket: Socket): void {
    const policy = this.#holder.current.protection;
    if (this.#settings.proxyProtocol) {
      this.#readProxyHeader(socket, policy);
      return;
    }
    // A ban made through the admin API holds even where nothing else is decided at accept.
    if (!policy.atAccept && !policy.state.bans.any) {
      this.#next(socket);
      return;
    }
    this.#admit(socket, normalizeAddress(socket.remoteAddress), policy);
  }

  /** Only a trusted proxy may speak first; the header must arrive whole within headerTimeout. */
  #readProxyHeader(socket: Socket, policy: ProtectionPolicy): void {
    const counters = policy.state.counters;
    const peer = normalizeAddress(socket.remoteAddress);
    if (policy.trusted === null || !policy.trusted.has(peer)) {
      counters.proxy_protocol_errors++;
      socket.destroy();
      return;
    }
    const fail = (): void => {
      counters.proxy_protocol_errors++;
      socket.destroy();
    };
    peekFirstBytes(socket, this.#settings.headerTimeout, parseProxyHeader, (header, received) => {
      if (header.kind === 'invalid') {
        fail();
        return;
      }
      // The bytes after the header are the HTTP request: node:http reads them from the stream first.
      if (received.length > header.length) socket.unshift(received.subarray(header.length));
      this.#admit(socket, header.source ?? peer, this.#holder.current.protection);
    }, fail);
  }

  #admit(socket: GuardedSocket, address: string, policy: ProtectionPolicy): void {
    const state = policy.state;
    const forwarded = policy.trusted !== null && policy.trusted.has(address);
    const conn: ConnectionState = { address, forwarded, denied: false, checkedGeneration: -1, key: '', state };
    // Behind a trusted proxy the client is only known per request: dispatch decides then.
    const admitted = forwarded || this.#screen(socket, conn, policy);
    if (admitted instanceof Promise) {
      // Counted across instances (Redis): node:http gets the socket once the count is in; a reset
      // meanwhile must not throw.
      socket.on('error', ignore);
      void admitted.then((ok) => {
        socket.off('error', ignore);
        if (!ok || socket.destroyed) {
          socket.destroy();
          return;
        }
        this.#next(socket);
      });
      return;
    }
    if (!admitted) {
      socket.destroy();
      return;
    }
    socket[CONNECTION] = conn;
    this.#next(socket);
  }

  /** False when the connection is to be closed at once; a promise when the count is kept in Redis. */
  #screen(socket: GuardedSocket, conn: ConnectionState, policy: ProtectionPolicy): boolean | Promise<boolean> {
    const state = policy.state;
    const counters = state.counters;
    const max = policy.maxConnectionsPerClient;
    const anyBan = state.bans.any;
    const key = anyBan || max > 0 ? clientKey(conn.address, policy.v6Prefix) : '';
    if (anyBan && state.bans.remaining(key) > 0) {
      counters.banned_connections++;
      return false;
    }
    if (policy.access !== null) {
      if (!policy.access.allows(conn.address)) {
        if (policy.closeOnDeny) {
          counters.denied_connections++;
          return false;
        }
        conn.denied = true;
      }
      conn.checkedGeneration = state.accessGeneration;
    }
    if (max > 0) {
      const opened = state.connections.open(key, max);
      if (opened instanceof Promise) return opened.then((ok) => counted(socket, conn, key, ok, policy));
      return counted(socket, conn, key, opened, policy);
    }
    return true;
  }
}

/** After `max_connections_per_client` was checked: refused, or counted until the socket closes. */
function counted(socket: GuardedSocket, conn: ConnectionState, key: string, ok: boolean, policy: ProtectionPolicy): boolean {
  const state = policy.state;
  if (!ok) {
    state.counters.client_connection_limit++;
    if (policy.bans !== null) state.bans.violation(key, policy.bans, 'connection_limit');
    return false;
  }
  if (socket.destroyed) {
    // Gone while it was being counted (across instances): nothing will close it again.
    state.connections.close(key);
    return false;
  }
  conn.key = key;
  socket[CONNECTION] = conn;
  socket.once('close', releaseConnection);
  return true;
}

function ignore(): void {}

function releaseConnection(this: GuardedSocket): void {
  const conn = this[CONNECTION];
  if (conn !== undefined && conn.key !== '') conn.state.connections.close(conn.key);
}

/** The guard's record of `socket`, when it made one. */
export function connectionOf(socket: Socket): ConnectionState | undefined {
  return (socket as GuardedSocket)[CONNECTION];
}
