import type { BalancerFactory } from './balancer.ts';
import { RoundRobinBalancer } from './round-robin.ts';

/** Balancers by their config name (`balance:`). */
export const BALANCERS: Readonly<Record<string, BalancerFactory>> = {
  round_robin: (servers) => new RoundRobinBalancer(servers),
};
