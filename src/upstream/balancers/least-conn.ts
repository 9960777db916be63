import type { Server } from '../server.ts';
import { ListBalancer } from './balancer.ts';

/**
 * Fewest requests in flight relative to weight (in-flight / weight, compared by cross-multiplying
 * as nginx does); ties are broken at random, in proportion to weight, so that an idle upstream
 * still spreads by weight. O(n) per pick, one pass.
 */
export class LeastConnBalancer extends ListBalancer {
  pick(): Server | undefined {
    const servers = this.servers;
    const weights = this.weights;
    let best: Server | undefined;
    let bestLoad = 0;
    let bestWeight = 1;
    let tieWeight = 0;
    for (let i = 0; i < servers.length; i++) {
      const server = servers[i] as Server;
      const weight = weights[i] as number;
      const load = server.state.inFlight;
      if (best === undefined || load * bestWeight < bestLoad * weight) {
        best = server;
        bestLoad = load;
        bestWeight = weight;
        tieWeight = weight;
      } else if (load * bestWeight === bestLoad * weight) {
        // Weighted reservoir sampling over the tied servers.
        tieWeight += weight;
        if (Math.random() * tieWeight < weight) {
          best = server;
          bestLoad = load;
          bestWeight = weight;
        }
      }
    }
    return best;
  }
}
