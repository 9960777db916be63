import type { Server } from '../server.ts';
import { ListBalancer } from './balancer.ts';

/**
 * Power of two random choices on peak-EWMA load (as Finagle and Linkerd): pick two servers at
 * random and take the one with the lower latency × (in-flight + 1) / weight. O(1), and it sends
 * little to a slow server without starving it (its average decays, so it is measured again).
 */
export class P2cBalancer extends ListBalancer {
  pick(): Server | undefined {
    const servers = this.servers;
    const n = servers.length;
    if (n <= 1) return servers[0];
    const i = Math.floor(Math.random() * n);
    // A second index different from the first.
    let j = Math.floor(Math.random() * (n - 1));
    if (j >= i) j++;
    const a = servers[i] as Server;
    const b = servers[j] as Server;
    const now = performance.now();
    // load / weight, compared by cross-multiplying: a's load is scaled by b's weight and vice versa.
    const loadA = a.state.load(now) * (this.weights[j] as number);
    const loadB = b.state.load(now) * (this.weights[i] as number);
    return loadB < loadA ? b : loadA < loadB ? a : Math.random() < 0.5 ? a : b;
  }
}
