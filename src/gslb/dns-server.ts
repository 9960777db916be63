/**
 * The GSLB's DNS listener: UDP and TCP (RFC 7766, two-byte length framing) on one address,
 * answering from the zone it is given (swapped on reload, with the sockets kept).
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { createServer, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { parseHostPort } from '../config/units.ts';
import { errorMessage } from '../core/caught.ts';
import { normalizeAddress } from '../middleware/forwarded.ts';
import { answerQuery, type DnsZone } from './dns-answer.ts';

/** An idle TCP connection is closed after this long (RFC 7766 §6.2.3 suggests seconds). */
const TCP_IDLE_MS = 10_000;
/** Most TCP connections at once. */
const TCP_MAX_CONNECTIONS = 256;
/** Port 0: UDP and TCP pairs tried before giving up (the port UDP got may be taken for TCP). */
const PAIR_ATTEMPTS = 5;

export class DnsServer {
  /** host:port as configured: what identifies the listener across reloads. */
  readonly listen: string;
  readonly tcp: boolean;
  /** Answered from; the reload's commit puts the new snapshot's zone here. */
  zone: DnsZone;
  #udp: UdpSocket | null = null;
  #tcp: Server | null = null;
  readonly #connections = new Set<Socket>();
  readonly #logger: Logger;
  /** Queries answered (UDP and TCP), for the admin API. */
  queries = 0;

  constructor(listen: string, tcp: boolean, zone: DnsZone, logger: Logger) {
    this.listen = listen;
    this.tcp = tcp;
    this.zone = zone;
    this.#logger = logger;
  }

  get address(): AddressInfo | undefined {
    return (this.#udp?.address() as AddressInfo | undefined) ?? undefined;
  }

  /**
   * Binds UDP, then TCP on the same port (port 0: the one UDP got; when another program holds
   * that port for TCP, another pair is tried). Throws, having closed what opened, when either fails.
   */
  async bind(): Promise<void> {
    const { host, port } = parseHostPort(this.listen) as { host: string; port: number };
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#bindPair(host, port);
        return;
      } catch (error: unknown) {
        const inUse = (error as { cause?: NodeJS.ErrnoException }).cause?.code === 'EADDRINUSE';
        if (port !== 0 || !this.tcp || !inUse || attempt >= PAIR_ATTEMPTS) throw error;
      }
    }
  }

  async #bindPair(host: string, port: number): Promise<void> {
    const udp = createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4' });
    udp.on('message', (msg, rinfo) => this.#onDatagram(udp, msg, rinfo.address, rinfo.port));
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address: host, port }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
    } catch (error: unknown) {
      udp.close();
      throw new Error(`gslb dns listen ${this.listen} (udp): ${errorMessage(error)}`, { cause: error });
    }
    udp.on('error', (error) => this.#logger.warn({ error: String(error), listen: this.listen }, 'gslb dns socket error'));
    this.#udp = udp;
    if (!this.tcp) return;
    const tcp = createServer((socket) => this.#onConnection(socket));
    tcp.maxConnections = TCP_MAX_CONNECTIONS;
    try {
      tcp.listen({ host, port: (udp.address() as AddressInfo).port });
      await once(tcp, 'listening');
    } catch (error: unknown) {
      udp.close();
      this.#udp = null;
      throw new Error(`gslb dns listen ${this.listen} (tcp): ${errorMessage(error)}`, { cause: error });
    }
    this.#tcp = tcp;
  }

  #onDatagram(udp: UdpSocket, msg: Buffer, address: string, port: number): void {
    const reply = this.#answer(msg, normalizeAddress(address), true);
    if (reply !== null) udp.send(reply, port, address);
  }

  #answer(msg: Buffer, peer: string, udp: boolean): Buffer | null {
    try {
      const reply = answerQuery(this.zone, msg, peer, udp);
      if (reply !== null) this.queries++;
      return reply;
    } catch (error: unknown) {
      this.#logger.warn({ error: String(error), listen: this.listen }, 'gslb dns query failed');
      return null;
    }
  }

  #onConnection(socket: Socket): void {
    this.#connections.add(socket);
    socket.setTimeout(TCP_IDLE_MS, () => socket.destroy());
    socket.on('close', () => this.#connections.delete(socket));
    // A reset or timed-out connection is closed by Node; there is nothing to answer on it.
    socket.on('error', () => {});
    let pending: Buffer = Buffer.alloc(0);
    const peer = normalizeAddress(socket.remoteAddress);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      // Each message is at most 64 KiB by its framing, so `pending` stays bounded.
      while (pending.length >= 2) {
        const length = pending.readUInt16BE(0);
        if (pending.length < 2 + length) break;
        const reply = this.#answer(pending.subarray(2, 2 + length), peer, false);
        pending = pending.subarray(2 + length);
        if (reply === null) continue;
        const framed = Buffer.allocUnsafe(2 + reply.length);
        framed.writeUInt16BE(reply.length, 0);
        reply.copy(framed, 2);
        // A client that sends queries but reads no answers is read no further until it does: the
        // answers waiting to be sent stay bounded.
        if (!socket.write(framed) && !socket.isPaused()) {
          socket.pause();
          socket.once('drain', () => socket.resume());
        }
      }
    });
  }

  async close(): Promise<void> {
    const udp = this.#udp;
    this.#udp = null;
    if (udp !== null) await new Promise<void>((resolve) => udp.close(() => resolve()));
    const tcp = this.#tcp;
    this.#tcp = null;
    if (tcp !== null) {
      for (const socket of this.#connections) socket.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    }
  }
}

