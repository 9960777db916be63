import type { Exchange } from '../../core/exchange.ts';
import type { Server } from '../server.ts';

/**
 * Chooses a server for each request. Implementations are registered by name in ./index.ts.
 *
 * A balancer only ever sees the servers that can take traffic now (up, not ejected, not
 * draining; the backups when no primary is left) with their effective weights (lower while a
 * server slow-starts): the upstream calls `update` whenever that set changes, which is rare, so
 * that `pick` stays a small O(1) or O(log n) step (O(n) for least_conn and weighted round robin,
 * as in nginx, and for hash with a load_factor). Skipping servers that are full or already tried is the attempt loop's job.
 */
export interface Balancer {
  /**
   * The next server, or undefined when there is none. `ex` is the request (absent for callers
   * that have none, such as WebSocket upgrades, where key-based balancers fall back to random).
   * `skip` is 0 for the first pick of a try; the attempt loop asks again with 1, 2... when the
   * pick was unusable, so that a deterministic balancer (hash) can move on.
   */
  pick(ex?: Exchange, skip?: number): Server | undefined;
  /**
   * The server `pick(ex, 0)` would choose now, changing nothing (no rotation moves): for the
   * admin API's explain, never the hot path. Random balancers give one choice they might make.
   */
  peek(ex?: Exchange): Server | undefined;
  /** Replaces the servers to choose among and their weights (same order, all > 0). */
  update(servers: readonly Server[], weights: readonly number[]): void;
}

/** The base of the balancers that keep the servers and weights `update` gives and read them on each pick (least_conn, p2c). */
export abstract class ListBalancer implements Balancer {
  protected servers: readonly Server[] = [];
  protected weights: readonly number[] = [];

  update(servers: readonly Server[], weights: readonly number[]): void {
    this.servers = servers;
    this.weights = [...weights];
  }

  abstract pick(ex?: Exchange, skip?: number): Server | undefined;

  /** least_conn and p2c keep no state between picks: a pick is a peek. */
  peek(ex?: Exchange): Server | undefined {
    return this.pick(ex, 0);
  }
}

/** What a factory gets besides the servers: settings compiled from the upstream's configuration. */
export interface BalancerOptions {
  /** For hash: the key of a request, or undefined when it has none. */
  readonly hashKey: ((ex: Exchange) => string | undefined) | null;
  /** For hash: bounded-load factor (0: no bound). */
  readonly loadFactor: number;
}

export type BalancerFactory = (options: BalancerOptions) => Balancer;
