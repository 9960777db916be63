/**
 * The DNS listeners of a configuration's gslb blocks, following reloads as the HTTP listeners do:
 * prepare binds the new addresses (an address that stays keeps its sockets), commit points every
 * listener at the new snapshot's zone and closes the ones no longer configured, abort closes what
 * prepare opened.
 */
import type { Logger } from 'pino';
import type { Snapshot } from '../core/snapshot.ts';
import type { DnsZone } from './dns-answer.ts';
import { DnsServer } from './dns-server.ts';

/** A reload's DNS listeners, bound and not yet answering from its snapshot. */
export interface PreparedDns {
  /** Every listener of the new configuration, by key, with its zone. */
  readonly wanted: ReadonlyMap<string, { readonly server: DnsServer; readonly zone: DnsZone }>;
  /** Those bound for this reload (the others were running already). */
  readonly fresh: readonly DnsServer[];
}

export class DnsListeners {
  #servers = new Map<string, DnsServer>();
  readonly #logger: Logger;
  /** False in every worker thread but the first: one process answers DNS (docs/gslb.md). */
  readonly #enabled: boolean;

  constructor(logger: Logger, enabled: boolean) {
    this.#logger = logger;
    this.#enabled = enabled;
  }

  /** The bound addresses, by gslb block name. */
  get addresses(): { block: string; address: string; port: number }[] {
    const out: { block: string; address: string; port: number }[] = [];
    for (const server of this.#servers.values()) {
      const address = server.address;
      if (address !== undefined) out.push({ block: server.zone.gslb.name, address: address.address, port: address.port });
    }
    return out;
  }

  /** Binds the listeners `snapshot` needs that are not running; throws (having closed them) when one cannot bind. */
  async bind(snapshot: Snapshot): Promise<PreparedDns> {
    const wanted = new Map<string, { server: DnsServer; zone: DnsZone }>();
    const fresh: DnsServer[] = [];
    if (!this.#enabled) return { wanted, fresh };
    try {
      for (const [name, block] of Object.entries(snapshot.config.gslb)) {
        const dns = block.dns;
        const gslb = snapshot.gslb.get(name);
        if (dns === undefined || gslb === undefined) continue;
        const zone: DnsZone = { gslb, zone: dns.zone, ttl: Math.max(1, Math.round(dns.ttl / 1000)), answers: new Map() };
        const key = `${dns.listen}|${dns.tcp}`;
        let server = this.#servers.get(key);
        if (server === undefined) {
          server = new DnsServer(dns.listen, dns.tcp, zone, this.#logger);
          await server.bind();
          fresh.push(server);
        }
        wanted.set(key, { server, zone });
      }
    } catch (error: unknown) {
      await Promise.all(fresh.map((s) => s.close()));
      throw error;
    }
    return { wanted, fresh };
  }

  /** The prepared listeners answer from the new snapshot; the ones it no longer has close. */
  apply(prepared: PreparedDns): void {
    for (const [key, server] of this.#servers) {
      if (!prepared.wanted.has(key)) void server.close();
    }
    const next = new Map<string, DnsServer>();
    for (const [key, { server, zone }] of prepared.wanted) {
      server.zone = zone;
      next.set(key, server);
    }
    this.#servers = next;
  }

  async abort(prepared: PreparedDns): Promise<void> {
    await Promise.all(prepared.fresh.map((s) => s.close()));
  }

  /** Queries answered, by listen address, for the admin API. */
  counters(): Record<string, number> {
    return Object.fromEntries([...this.#servers.values()].map((s) => [s.listen, s.queries]));
  }

  async close(): Promise<void> {
    const servers = [...this.#servers.values()];
    this.#servers = new Map();
    await Promise.all(servers.map((s) => s.close()));
  }
}
