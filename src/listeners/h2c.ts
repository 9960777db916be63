/**
 * HTTP/2 with prior knowledge on a plain listener (RFC 9113 §3.3): a connection that opens with
 * the HTTP/2 preface goes to the HTTP/2 server, any other to HTTP/1.1. Only the first bytes are
 * looked at; they are put back before the chosen server reads them.
 */
import type { Socket } from 'node:net';
import { peekFirstBytes } from './peek.ts';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** What the first bytes of a connection say; undefined while they are a start of the preface. */
function classifyPreface(data: Buffer): 'h2' | 'http1' | undefined {
  const length = Math.min(data.length, PREFACE.length);
  for (let i = 0; i < length; i++) if (data[i] !== PREFACE[i]) return 'http1';
  return length === PREFACE.length ? 'h2' : undefined;
}

/**
 * Reads the first bytes of `socket` and calls `h2` or `http1` with it, the bytes put back. A
 * connection that sends nothing for `timeoutMs`, or closes, is destroyed.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, h2: (socket: Socket) => void, http1: (socket: Socket) => void): void {
  peekFirstBytes(socket, timeoutMs, classifyPreface, (kind, received) => {
    // node:http2 reads what is buffered when it takes a paused socket; node:http resumes the
    // stream itself with its 'data' listener (as after a PROXY header).
    if (kind === 'h2') socket.pause();
    socket.unshift(received);
    if (kind === 'h2') h2(socket);
    else http1(socket);
  });
}
