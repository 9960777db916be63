import type { Exchange } from '../../core/exchange.ts';
import { hashString } from '../request-keys.ts';
import type { Server } from '../server.ts';
import type { Balancer, BalancerOptions } from './balancer.ts';
import { buildTable } from './maglev.ts';

/** Slots looked at past the key's own when its server is over the load bound. */
const MAX_PROBES = 64;

/**
 * Consistent hashing on a request key through a Maglev table: one table lookup per pick. With a
 * load factor c, a server already holding more than c times the average in-flight load is passed
 * over for the next slots of the table (bounded loads, Mirrokni et al.), which keeps hot keys from
 * swamping one server while most keys stay put; the average takes one pass over the servers, so a
 * pick is then O(n). A request without a key goes to a random slot.
 */
export class HashBalancer implements Balancer {
  readonly #key: (ex: Exchange) => string | undefined;
  readonly #loadFactor: number;
  #servers: readonly Server[] = [];
  #table: Int32Array = new Int32Array(0);

  constructor(options: BalancerOptions) {
    if (options.hashKey === null) throw new Error('hash balancer without a key');
    this.#key = options.hashKey;
    this.#loadFactor = options.loadFactor;
  }

  update(servers: readonly Server[], weights: readonly number[]): void {
    // Built in a fixed order (by origin), so that reordering the configuration moves no key.
    const order = servers.map((_, i) => i).sort((a, b) => ((servers[a] as Server).origin < (servers[b] as Server).origin ? -1 : 1));
    this.#servers = order.map((i) => servers[i] as Server);
    this.#table = buildTable(
      order.map((i) => (servers[i] as Server).origin),
      order.map((i) => weights[i] as number),
    );
  }

  /** A pick only reads the table and the loads: it is its own peek. */
  peek(ex?: Exchange): Server | undefined {
    return this.pick(ex, 0);
  }

  pick(ex?: Exchange, skip = 0): Server | undefined {
    const table = this.#table;
    const size = table.length;
    if (size === 0) return undefined;
    const key = ex === undefined ? undefined : this.#key(ex);
    const slot = key === undefined ? Math.floor(Math.random() * size) : (hashString(key) + skip) % size;
    const server = this.#servers[table[slot] as number];
    if (this.#loadFactor === 0 || server === undefined) return server;
    return this.#bounded(server, slot);
  }

  #bounded(server: Server, slot: number): Server {
    const servers = this.#servers;
    let total = 0;
    for (let i = 0; i < servers.length; i++) total += (servers[i] as Server).state.inFlight;
    // Mirrokni et al.: capacity ceil(c * (m + 1) / n) for m requests in flight on n servers.
    const bound = Math.ceil((this.#loadFactor * (total + 1)) / servers.length);
    if (server.state.inFlight < bound) return server;
    const table = this.#table;
    for (let probe = 1; probe <= MAX_PROBES; probe++) {
      const candidate = servers[table[(slot + probe) % table.length] as number] as Server;
      if (candidate.state.inFlight < bound) return candidate;
    }
    return server;
  }
}
