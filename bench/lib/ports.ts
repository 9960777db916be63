// Free TCP ports on the loopback interface.
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';

export const HOST = '127.0.0.1';

/** Ask the kernel for a free port on 127.0.0.1 (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
