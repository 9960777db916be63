/**
 * HTTP/1.1 Upgrade (WebSocket) pass-through: the handshake goes to the server through its pool,
 * and after a 101 the two sockets are joined byte for byte. The client side is an HTTP/1.1 socket,
 * or an HTTP/2 stream (RFC 8441) that brings its own way of answering (`answer`).
 */
import type { Duplex } from 'node:stream';
import type { Dispatcher, Pool } from 'undici';
import type { NamedDispatchOptions } from './pool.ts';

type DispatchController = Parameters<Dispatcher.DispatchHandler['onRequestStart'] & {}>[0];

export interface TunnelRequest {
  readonly pool: Pool;
  /** The server's constant undici `servername` (see Server.servername). */
  readonly servername: string;
  readonly path: string;
  readonly method: string;
  /** The Upgrade header's value, e.g. "websocket". */
  readonly protocol: string;
  /** Headers without Connection/Upgrade (the transport writes those). */
  readonly headers: string[];
  readonly headersTimeout: number;
  /** The client's socket and the bytes that came after its request head. */
  readonly client: Duplex;
  readonly head: Buffer;
  /** Response headers to send the client, computed from the server's (Gatehouse's own fields added). */
  readonly responseHeaders: (headers: Record<string, string | string[] | undefined>) => Record<string, string | string[]>;
  /** Called once, with the status the client saw (101, or an error status). */
  readonly done: (status: number, error?: Error) => void;
  /** Head lines ("name: value\r\n") of Gatehouse's own fields, for an HTTP/1.1 refusal written here; absent, none. */
  readonly fieldLines?: string;
  /** How to answer a client that is not an HTTP/1.1 socket; absent, HTTP/1.1 responses are written to `client`. */
  readonly answer?: TunnelAnswer;
}

/** Answers to a tunnel's client in its own protocol (an HTTP/2 stream). */
export interface TunnelAnswer {
  /** The server switched protocols (its 101 headers, and `responseHeaders` of them); false refuses the tunnel after all (502). */
  accepted(headers: Record<string, string | string[] | undefined>, rewritten: Record<string, string | string[]>): boolean;
  /** The tunnel is refused with this status. */
  refused(status: number, reason: string): void;
}

export function openTunnel(request: TunnelRequest): void {
  const options: NamedDispatchOptions = {
    path: request.path,
    method: request.method,
    headers: request.headers,
    upgrade: request.protocol,
    headersTimeout: request.headersTimeout,
    servername: request.servername,
  };
  request.pool.dispatch(options, new TunnelHandler(request));
}

class TunnelHandler implements Dispatcher.DispatchHandler {
  readonly #request: TunnelRequest;
  #answered = false;

  constructor(request: TunnelRequest) {
    this.#request = request;
  }

  onRequestStart(controller: DispatchController): void {
    if (this.#request.client.destroyed) controller.abort(new Error('client closed'));
  }

  onRequestUpgrade(
    _controller: DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
    upstream: Duplex,
  ): void {
    const { client, head } = this.#request;
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    const answer = this.#request.answer;
    if (answer !== undefined) {
      if (!answer.accepted(headers, this.#request.responseHeaders(headers))) {
        upstream.destroy();
        this.#reject(502, 'Bad Gateway', new Error('the server did not accept the WebSocket handshake'));
        return;
      }
    } else this.#writeSwitch(statusCode, headers);
    if (head.length > 0) upstream.write(head);
    upstream.pipe(client);
    client.pipe(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    upstream.once('error', close);
    client.once('error', close);
    upstream.once('close', close);
    client.once('close', close);
    this.#answer(101);
  }

  #writeSwitch(statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // Connection and Upgrade are hop-by-hop, but a 101 must carry them (RFC 9110 §7.8).
    const out = this.#request.responseHeaders(headers);
    let response = `HTTP/1.1 ${statusCode} Switching Protocols\r\nconnection: upgrade\r\nupgrade: ${String(headers['upgrade'] ?? this.#request.protocol)}\r\n`;
    for (const [name, value] of Object.entries(out)) {
      for (const v of Array.isArray(value) ? value : [value]) response += `${name}: ${v}\r\n`;
    }
    this.#request.client.write(`${response}\r\n`);
  }

  /** The server answered without upgrading: pass its status on and close. */
  onResponseStart(controller: DispatchController, statusCode: number): void {
    if (statusCode < 200) return;
    this.#reject(statusCode, 'Upgrade Refused');
    controller.abort(new Error('upgrade refused'));
  }

  onResponseData(): void {}

  onResponseEnd(): void {}

  onResponseError(_controller: DispatchController, error: Error): void {
    if (this.#answered) return;
    const code = (error as { code?: string }).code;
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT';
    this.#reject(timeout ? 504 : 502, timeout ? 'Gateway Timeout' : 'Bad Gateway', error);
  }

  #reject(status: number, reason: string, error?: Error): void {
    if (this.#answered) return;
    const body = `${status} ${reason}\n`;
    const client = this.#request.client;
    const answer = this.#request.answer;
    if (answer !== undefined) {
      if (!client.destroyed) answer.refused(status, reason);
    } else if (!client.destroyed) {
      client.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n${this.#request.fieldLines ?? ''}\r\n${body}`,
      );
    }
    this.#answer(status, error);
  }

  #answer(status: number, error?: Error): void {
    this.#answered = true;
    this.#request.done(status, error);
  }
}
