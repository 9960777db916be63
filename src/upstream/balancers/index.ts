import type { BalancerFactory } from './balancer.ts';
import { FirstBalancer } from './first.ts';
import { HashBalancer } from './hash.ts';
import { LeastConnBalancer } from './least-conn.ts';
import { P2cBalancer } from './p2c.ts';
import { RandomBalancer } from './random.ts';
import { RoundRobinBalancer } from './round-robin.ts';

/** Balancers by their config name (`balance:`). */
export const BALANCERS: Readonly<Record<string, BalancerFactory>> = {
  round_robin: () => new RoundRobinBalancer(),
  least_conn: () => new LeastConnBalancer(),
  p2c: () => new P2cBalancer(),
  hash: (options) => new HashBalancer(options),
  random: () => new RandomBalancer(),
  first: () => new FirstBalancer(),
};
