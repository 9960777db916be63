/**
 * Reads the first bytes of a connection until they say enough (a PROXY header, the HTTP/2
 * preface, a TLS ClientHello), for a listener to decide where the connection goes. The bytes are
 * handed over with the decision; the caller puts back what the next reader must see.
 */
import type { Socket } from 'node:net';

/** Returns undefined while more bytes are needed. */
export type Decide<T> = (received: Buffer) => T | undefined;

/**
 * Calls `done` once `decide` answers. A connection that says too little within `timeoutMs`, or
 * ends first, is given to `fail` (which destroys it unless told otherwise).
 */
export function peekFirstBytes<T>(socket: Socket, timeoutMs: number, decide: Decide<T>, done: (result: T, received: Buffer) => void, fail: () => void = () => socket.destroy()): void {
  let received: Buffer | null = null;
  const onData = (chunk: Buffer): void => {
    received = received === null ? chunk : Buffer.concat([received, chunk]);
    const result = decide(received);
    if (result === undefined) return;
    cleanup();
    done(result, received);
  };
  const onFail = (): void => {
    cleanup();
    fail();
  };
  // An error is followed by 'close'; the socket is already done for.
  const onError = (): void => cleanup();
  const timer = setTimeout(onFail, timeoutMs);
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onFail);
    socket.removeListener('error', onError);
  };
  socket.on('data', onData);
  socket.on('end', onFail);
  socket.on('error', onError);
}
