// Shared shutdown for the peer proxies: stop on SIGTERM/SIGINT.
import type { Server } from 'node:http';

export function closeOnSignal(server: Server, extra?: () => Promise<void>): void {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      server.close();
      server.closeAllConnections();
      void extra?.().catch(() => undefined);
    });
  }
}
