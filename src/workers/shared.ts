/**
 * What worker threads share: the tables of rate-limit buckets and open connections per client in
 * shared memory (made by the primary, handed to each worker), and a BroadcastChannel on which ban
 * changes travel to every thread of the process, the primary's admin API included, in well under
 * a millisecond.
 */
import { BroadcastChannel } from 'node:worker_threads';
import { allocateSharedTable, type SharedTableMemory } from '../core/shared-table.ts';
import type { SharedProtection } from '../core/protection-state.ts';
import type { BanChange, BanList } from '../middleware/rate-limit/bans.ts';
import { SharedConnectionCounts, SharedRateLimitStore } from '../middleware/rate-limit/shared-store.ts';
import type { HealthSharing, ServerEvent, SharedServer } from '../upstream/health/sharing.ts';
import { randomTicketSecret } from '../listeners/tls/session-tickets.ts';
import type { AcmeEvent, AcmeSharing } from '../listeners/tls/acme/sharing.ts';

/** The shared memory, made once when the workers start (its size is fixed until a restart). */
export interface SharedMemory {
  readonly rateLimits: SharedTableMemory;
  readonly connections: SharedTableMemory;
  /** Names the ban channel, so that two proxies in one process (tests) keep apart. */
  readonly channel: string;
  /** Session ticket keys derive from it in every worker, so that a client resumes on any of them. */
  readonly ticketSecret: Uint8Array;
  /** How many worker threads share it: a thread that hands something to all waits for the others' word. */
  readonly threads: number;
}

let proxies = 0;

export function allocateSharedMemory(maxClients: number, threads: number): SharedMemory {
  return {
    threads,
    rateLimits: allocateSharedTable(maxClients),
    connections: allocateSharedTable(maxClients),
    channel: `gatehouse:bans:${process.pid}:${++proxies}`,
    ticketSecret: randomTicketSecret(),
  };
}

/** A channel that does not keep a worker alive after its Gatehouse stopped. */
function openChannel(name: string): BroadcastChannel {
  const channel = new BroadcastChannel(name);
  (channel as unknown as { unref(): void }).unref();
  return channel;
}

/** A thread's view of the shared protection state; close() leaves the ban channel. */
export function sharedProtection(memory: SharedMemory): SharedProtection & { close(): void } {
  const channel = openChannel(memory.channel);
  let bans: BanList | null = null;
  channel.onmessage = (event: unknown) => bans?.apply((event as { data: BanChange }).data);
  return {
    store: new SharedRateLimitStore(memory.rateLimits),
    connections: new SharedConnectionCounts(memory.connections),
    attachBans(list: BanList): void {
      bans = list;
      list.publish = (change) => channel.postMessage(change);
    },
    close(): void {
      channel.close();
    },
  };
}

/** A worker's side of the health channel; `runsChecks` for the one worker that checks servers. */
export function sharedHealth(memory: SharedMemory, runsChecks: boolean): HealthSharing & { setRunsChecks(on: boolean): void; close(): void } {
  const channel = openChannel(`${memory.channel}:health`);
  // One state per key and thread; a reload's new state for the same server takes the old one's place.
  const servers = new Map<string, SharedServer>();
  channel.onmessage = (event: unknown) => {
    const change = (event as { data: ServerEvent }).data;
    servers.get(change.key)?.applyRemote(change);
  };
  let checks = runsChecks;
  return {
    get runsChecks(): boolean {
      return checks;
    },
    setRunsChecks(on: boolean): void {
      if (on === checks) return;
      checks = on;
      for (const server of servers.values()) server.checksMoved();
    },
    publish: (change) => channel.postMessage(change),
    subscribe: (key, server) => void servers.set(key, server),
    unsubscribe: (key, server) => {
      if (servers.get(key) === server) servers.delete(key);
    },
    close: () => channel.close(),
  };
}

/**
 * How long an opened challenge waits for every other worker to say it answers it, ms: a worker
 * that died or hangs must not stop the order; the CA retries nothing, so past this it may fail.
 */
export const CHALLENGE_HANDOUT_TIMEOUT_MS = 5_000;

/** A worker's word that it now answers the challenge `token` (sent on the ACME channel, never to onEvent). */
interface ChallengeTaken {
  readonly type: 'challenge-taken';
  readonly token: string;
}

/**
 * A worker's side of the ACME channel: the worker that runs the health checks orders certificates
 * too. An opened challenge is published only once every other worker has it: the CA validates as
 * soon as it is told to, and its request may reach any worker (a loaded machine delivered the
 * message after the CA's request, which then failed the order).
 */
export function sharedAcme(memory: SharedMemory, health: { readonly runsChecks: boolean }): AcmeSharing & { close(): void } {
  const channel = openChannel(`${memory.channel}:acme`);
  /** Opened challenges waiting for other workers' word: how many words are still to come. */
  const handouts = new Map<string, { missing: number; done: () => void }>();
  const peers = memory.threads - 1;
  const sharing: AcmeSharing & { close(): void } = {
    get ordersHere(): boolean {
      return health.runsChecks;
    },
    publish: (event) => {
      channel.postMessage(event);
      if (event.type !== 'challenge' || event.keyAuthorization === null || peers <= 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          handouts.delete(event.token);
          resolve();
        };
        const timer = setTimeout(done, CHALLENGE_HANDOUT_TIMEOUT_MS);
        handouts.set(event.token, { missing: peers, done });
      });
    },
    onEvent: () => {},
    close: () => {
      for (const handout of [...handouts.values()]) handout.done();
      channel.close();
    },
  };
  channel.onmessage = (message: unknown) => {
    const event = (message as { data: AcmeEvent | ChallengeTaken }).data;
    if (event.type === 'challenge-taken') {
      const handout = handouts.get(event.token);
      if (handout !== undefined && --handout.missing === 0) handout.done();
      return;
    }
    sharing.onEvent(event);
    if (event.type === 'challenge' && event.keyAuthorization !== null) channel.postMessage({ type: 'challenge-taken', token: event.token } satisfies ChallengeTaken);
  };
  return sharing;
}
