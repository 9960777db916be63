import type { UpstreamConfig } from '../config/schema.ts';
import type { Registry } from '../core/registry.ts';
import { poolOptionsOf } from '../transport/pool.ts';
import type { Balancer } from './balancers/balancer.ts';
import { BALANCERS } from './balancers/index.ts';
import { Server } from './server.ts';

/** A named pool of servers with its balancer and per-request timeouts. */
export class Upstream {
  readonly name: string;
  readonly servers: readonly Server[];
  readonly balancer: Balancer;
  /** Time to wait for response headers, ms. */
  readonly headersTimeout: number;
  /** Longest silence while the body streams, ms. */
  readonly bodyTimeout: number;
  /** Lower-case backend authorities and host names, for Location and cookie rewriting. */
  readonly backendAuthorities: ReadonlySet<string>;
  readonly backendHostnames: ReadonlySet<string>;

  constructor(name: string, config: UpstreamConfig, registry: Registry) {
    this.name = name;
    const options = poolOptionsOf(config);
    this.servers = config.servers.map((s) => {
      const url = new URL(s.url);
      const { key, pool } = registry.acquirePool(url.origin, options);
      return new Server(url, s.weight, pool, key);
    });
    const factory = BALANCERS[config.balance];
    if (factory === undefined) throw new Error(`unknown balancer ${config.balance}`);
    this.balancer = factory(this.servers);
    this.headersTimeout = config.timeouts.header;
    this.bodyTimeout = config.timeouts.idle;
    this.backendAuthorities = new Set(this.servers.map((s) => s.authority.toLowerCase()));
    this.backendHostnames = new Set(this.servers.map((s) => s.hostname.toLowerCase()));
  }

  /** Gives the pools back to the registry; called when the snapshot that owns this is retired. */
  release(registry: Registry): void {
    for (const server of this.servers) registry.releasePool(server.poolKey);
  }
}
