/**
 * Clients on chosen loopback addresses (127.0.0.2, 127.0.0.3, ...: every 127/8 address is local),
 * so that a test can play several clients: requests, raw bytes, and connections read answer by
 * answer.
 */
import { once } from 'node:events';
import { request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { TestContext } from 'node:test';
import { call } from './admin.ts';
import type { SimpleResponse } from './http.ts';

export interface FromOptions {
  readonly method?: string;
  readonly headers?: OutgoingHttpHeaders;
  readonly body?: string | Buffer;
}

/** One request on its own connection from `localAddress`. */
export async function requestFrom(localAddress: string, url: string, options: FromOptions = {}): Promise<SimpleResponse> {
  const req = httpRequest(url, { method: options.method ?? 'GET', headers: options.headers, agent: false, localAddress });
  req.end(options.body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body: Buffer.concat(chunks).toString(), trailers: res.trailers };
}

/** Sends raw bytes from `localAddress` and returns all that came back before the server closed (or `timeoutMs`). */
export async function rawFrom(localAddress: string, port: number, data: string | Buffer, timeoutMs = 3000, host = '127.0.0.1'): Promise<string> {
  const socket = connect({ port, host, localAddress });
  socket.on('error', () => {});
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.once('connect', () => socket.write(data));
  const timer = setTimeout(() => socket.destroy(), timeoutMs);
  await new Promise<void>((resolve) => socket.once('close', () => resolve()));
  clearTimeout(timer);
  return Buffer.concat(chunks).toString('latin1');
}

/** A parsed answer: status, lower-cased head, body (Content-Length bodies only). */
export interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** One client connection, written to and read answer by answer. */
export class Connection {
  readonly socket: Socket;
  /** Resolves (with the time) when the socket closes. */
  readonly closed: Promise<number>;
  #buffer = Buffer.alloc(0);
  #wake: (() => void) | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      this.#wake?.();
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#wake?.();
        resolve(performance.now());
      }),
    );
  }

  /** Connects from `localAddress` (127.0.0.1 by default); destroyed when the test ends. */
  static async open(t: TestContext, port: number, localAddress = '127.0.0.1', host = '127.0.0.1'): Promise<Connection> {
    const socket = connect({ port, host, localAddress });
    t.after(() => socket.destroy());
    const connection = new Connection(socket);
    await Promise.race([once(socket, 'connect'), connection.closed]);
    return connection;
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** Bytes received and not yet read as an answer. */
  get pending(): string {
    return this.#buffer.toString('latin1');
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next complete answer; rejects if the connection closes first. */
  async answer(): Promise<RawAnswer> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n\r\n');
      if (end >= 0) {
        const head = this.#buffer.subarray(0, end).toString('latin1').toLowerCase();
        const length = Number(/\r\ncontent-length: *(\d+)/.exec(head)?.[1] ?? 0);
        if (this.#buffer.length >= end + 4 + length) {
          const body = this.#buffer.subarray(end + 4, end + 4 + length).toString();
          this.#buffer = this.#buffer.subarray(end + 4 + length);
          return { status: Number(head.slice(9, 12)), head, body };
        }
      }
      if (this.socket.destroyed) throw new Error(`connection closed; received ${JSON.stringify(this.#buffer.toString('latin1'))}`);
      await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /** Sends a GET and reads its answer. */
  async get(path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
    const lines = Object.entries({ host: 'x', ...headers }).map(([k, v]) => `${k}: ${v}\r\n`);
    this.write(`GET ${path} HTTP/1.1\r\n${lines.join('')}\r\n`);
    return this.answer();
  }
}

/** The admin API's JSON answer to `method path` (admin.ts's call, its body left unknown). */
export function admin(port: number, method: string, path: string): Promise<{ status: number; body: unknown }> {
  return call(port, method, path);
}
