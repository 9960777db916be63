import type { Server } from '../server.ts';
import type { Balancer } from './balancer.ts';

/** Weighted random: a binary search in the cumulative weights, O(log n); O(1) when weights are equal. */
export class RandomBalancer implements Balancer {
  #servers: readonly Server[] = [];
  /** cumulative[i] = weights[0] + ... + weights[i]; null when all weights are equal. */
  #cumulative: Float64Array | null = null;
  #total = 0;

  update(servers: readonly Server[], weights: readonly number[]): void {
    this.#servers = servers;
    const equal = weights.every((w) => w === weights[0]);
    this.#cumulative = equal ? null : new Float64Array(weights.length);
    let total = 0;
    for (let i = 0; i < weights.length; i++) {
      total += weights[i] as number;
      if (this.#cumulative !== null) this.#cumulative[i] = total;
    }
    this.#total = total;
  }

  /** A pick keeps no state: it is its own peek. */
  peek(): Server | undefined {
    return this.pick();
  }

  pick(): Server | undefined {
    const servers = this.#servers;
    const cumulative = this.#cumulative;
    if (cumulative === null) return servers[Math.floor(Math.random() * servers.length)];
    const r = Math.random() * this.#total;
    let low = 0;
    let high = cumulative.length - 1;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if ((cumulative[mid] as number) > r) high = mid;
      else low = mid + 1;
    }
    return servers[low];
  }
}
