import type { Server } from '../server.ts';
import type { Balancer } from './balancer.ts';

/**
 * Smooth weighted round robin, as nginx does it: each pick raises every server's current weight by
 * its weight and takes the highest, which then drops by the total. Weights 5,1,1 give
 * a a b a c a a rather than a a a a a b c, so no server gets bursts.
 */
export class RoundRobinBalancer implements Balancer {
  #servers: readonly Server[] = [];
  #weights: number[] = [];
  #current: number[] = [];
  #total = 0;
  #equal = true;
  #next = 0;

  constructor(servers: readonly Server[] = [], weights: readonly number[] = servers.map((s) => s.weight)) {
    this.update(servers, weights);
  }

  update(servers: readonly Server[], weights: readonly number[]): void {
    this.#servers = servers;
    this.#weights = [...weights];
    this.#current = servers.map(() => 0);
    this.#total = weights.reduce((a, b) => a + b, 0);
    this.#equal = weights.every((w) => w === weights[0]);
    this.#next = 0;
  }

  peek(): Server | undefined {
    const servers = this.#servers;
    const n = servers.length;
    if (n <= 1) return servers[0];
    if (this.#equal) return servers[this.#next];
    // The pick's arithmetic, on the side: the highest current + weight wins (the first on a tie).
    let best = 0;
    let bestValue = -Infinity;
    for (let i = 0; i < n; i++) {
      const value = (this.#current[i] as number) + (this.#weights[i] as number);
      if (value > bestValue) {
        best = i;
        bestValue = value;
      }
    }
    return servers[best];
  }

  pick(): Server | undefined {
    const servers = this.#servers;
    const n = servers.length;
    if (n <= 1) return servers[0];
    if (this.#equal) {
      // All weights equal: plain rotation, no arithmetic.
      const server = servers[this.#next];
      this.#next = (this.#next + 1) % n;
      return server;
    }
    let best = 0;
    for (let i = 0; i < n; i++) {
      const current = (this.#current[i] as number) + (this.#weights[i] as number);
      this.#current[i] = current;
      if (current > (this.#current[best] as number)) best = i;
    }
    this.#current[best] = (this.#current[best] as number) - this.#total;
    return servers[best];
  }
}
