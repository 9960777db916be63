import type { Server } from '../server.ts';
import type { Balancer } from './balancer.ts';

/**
 * Fills servers in configuration order (as HAProxy's `first`): the first server below its
 * max_in_flight takes the request, so that the last ones stay idle and can be scaled down.
 * Without max_in_flight, all traffic goes to the first available server.
 */
export class FirstBalancer implements Balancer {
  #servers: readonly Server[] = [];

  update(servers: readonly Server[]): void {
    this.#servers = servers;
  }

  /** A pick keeps no state: it is its own peek. */
  peek(): Server | undefined {
    return this.pick();
  }

  pick(): Server | undefined {
    const servers = this.#servers;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[i] as Server;
      if (!server.full) return server;
    }
    return servers[0];
  }
}
