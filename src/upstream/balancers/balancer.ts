import type { Server } from '../server.ts';

/** Chooses a server for each request. Implementations are registered by name in ./index.ts. */
export interface Balancer {
  /** The next server, or undefined when none can take the request. */
  pick(): Server | undefined;
}

export type BalancerFactory = (servers: readonly Server[]) => Balancer;
