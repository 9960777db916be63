/**
 * The part of a cache that outlives a reload, kept in the Registry by a stable key (the store's
 * kind and name, or its directory): the store itself, the fills in progress (request
 * collapsing), background revalidations, and counters. Routes that name the same store share it.
 */
import { resolve } from 'node:path';
import type { Registry, SharedState } from '../core/registry.ts';
import { PassMarks, Fills } from './collapse.ts';
import { DiskStore } from './disk-store.ts';
import { MemoryStore } from './memory-store.ts';
import { TieredStore } from './tiered-store.ts';
import type { CacheStore, StoreLimits } from './store.ts';

/** How long a key found uncacheable skips request collapsing. */
const PASS_MARK_MS = 30_000;

/** A configured store (compiled from `cache.stores.<name>`). */
export type StoreSpec =
  | { readonly name: string; readonly type: 'memory'; readonly limits: StoreLimits }
  | { readonly name: string; readonly type: 'disk'; readonly path: string; readonly limits: StoreLimits }
  | { readonly name: string; readonly type: 'redis'; readonly limits: StoreLimits };

/** What happened to requests, per store. */
export interface CacheCounters {
  /** Answered from the store, fresh. */
  hits: number;
  /** Answered from the store stale (stale-while-revalidate, max-stale). */
  staleHits: number;
  /** Went upstream with nothing usable stored. */
  misses: number;
  /** Went upstream to revalidate a stored response. */
  revalidations: number;
  /** Revalidations the origin answered 304. */
  notModified: number;
  /** Responses stored. */
  stored: number;
  /** Waited for another request's fill. */
  collapsed: number;
  /** Answered stale because the origin failed (stale-if-error). */
  staleOnError: number;
  /** Skipped by a bypass rule. */
  bypassed: number;
  /** Entries removed by unsafe methods (RFC 9111 §4.4). */
  invalidated: number;
}

export class SharedCache implements SharedState {
  readonly name: string;
  readonly store: CacheStore;
  readonly fills = new Fills();
  readonly passes = new PassMarks(PASS_MARK_MS);
  /** Collapse keys being revalidated in the background → when the refresh started (ms epoch). */
  readonly revalidating = new Map<string, number>();
  readonly counters: CacheCounters = {
    hits: 0,
    staleHits: 0,
    misses: 0,
    revalidations: 0,
    notModified: 0,
    stored: 0,
    collapsed: 0,
    staleOnError: 0,
    bypassed: 0,
    invalidated: 0,
  };

  constructor(name: string, store: CacheStore) {
    this.name = name;
    this.store = store;
  }

  close(): void {
    this.store.close();
  }

  /**
   * An upgrade: a disk store stops writing and gives its directory to the new process (which
   * waits for it); hits on what it holds go on until this process exits.
   */
  handOver(): void {
    if (this.store.kind === 'disk') this.store.close();
  }
}

function createStore(registry: Registry, spec: StoreSpec): CacheStore {
  switch (spec.type) {
    case 'memory':
      return new MemoryStore(spec.limits);
    case 'disk':
      return new DiskStore(resolve(spec.path), spec.limits, registry.predecessor);
    case 'redis':
      // The loader refuses a redis store without state.redis; state.redis added by a reload waits for a restart.
      if (registry.redis === null) throw new Error(`cache store "${spec.name}" needs state.redis, read at start: restart to use it`);
      return new TieredStore(registry.redis, spec.name, spec.limits);
    default:
      return spec satisfies never;
  }
}

/** The registry key of a store: memory stores by name, disk stores by directory. */
export function storeKey(spec: StoreSpec): string {
  return spec.type === 'disk' ? `cache:disk:${resolve(spec.path)}` : `cache:${spec.type}:${spec.name}`;
}

/** The shared cache for `spec`, created on first use, with the spec's limits applied. */
export function acquireSharedCache(registry: Registry, spec: StoreSpec): SharedCache {
  const shared = registry.acquireShared(storeKey(spec), () => new SharedCache(spec.name, createStore(registry, spec)));
  shared.store.configure(spec.limits);
  return shared;
}
