/**
 * Raw HTTP/2 frames (RFC 9113 §4.1) for tests that must misbehave as no well-behaved client
 * library will: floods of PING, SETTINGS or CONTINUATION frames, written on a plain socket to an
 * h2c listener.
 */
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FRAME = { HEADERS: 1, SETTINGS: 4, PING: 6, CONTINUATION: 9 } as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK "literal header field without indexing, new name" (RFC 7541 §6.2.2), short strings only. */
export function literal(name: string, value: string): Buffer {
  if (name.length > 126 || value.length > 126) throw new Error('short strings only');
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

/** A connection that has sent the preface and an empty SETTINGS frame; reads nothing unless asked. */
export async function rawH2(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]));
  return socket;
}

/** Writes `make(i)` until the peer closes the connection or `max` frames were written; returns how many. */
export async function flood(socket: Socket, make: (i: number) => Buffer, max: number): Promise<number> {
  let sent = 0;
  while (sent < max && !socket.destroyed && !socket.writableEnded) {
    const ok = socket.write(make(sent));
    sent++;
    // Stop when the kernel's buffers are full (the peer reads nothing more): let it act.
    if (!ok) {
      // (once() rejects on 'error': the peer closing on us is an answer, not a failure.)
      const drained = await Promise.race([
        once(socket, 'drain').then(() => true, () => false),
        once(socket, 'close').then(() => false, () => false),
        new Promise((r) => setTimeout(() => r(false), 2000)),
      ]);
      if (drained !== true) break;
    }
  }
  return sent;
}
