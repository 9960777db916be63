/**
 * The in-memory index both stores keep: primary key → variants, bounded by bytes with a CLOCK
 * (second chance) approximation of LRU. A hit only sets a flag on its slot, so the hot path does
 * no map reordering; eviction walks from the oldest slot, giving referenced ones a second chance.
 */
import type { CachedEntry, EntryMeta } from './entry.ts';
import type { CacheStore, EntryWriter, StoreLimits, StoreStats } from './store.ts';

/** Most variants kept under one key (e.g. Accept-Encoding × Accept-Language); the oldest goes. */
export const MAX_VARIANTS = 32;

interface Slot {
  entries: CachedEntry[];
  /** Accounted bytes of each entry, parallel to `entries`. */
  sizes: number[];
  referenced: boolean;
}

/** Why an entry left the index: replaced by a newer one with the same variant, or removed. */
export type Removal = 'replaced' | 'removed';

export class EntryIndex {
  readonly #slots = new Map<string, Slot>();
  readonly #tags = new Map<string, Set<string>>();
  readonly #onRemove: (entry: CachedEntry, why: Removal) => void;
  bytes = 0;
  count = 0;
  evictions = 0;

  constructor(onRemove: (entry: CachedEntry, why: Removal) => void) {
    this.#onRemove = onRemove;
  }

  get(key: string): CachedEntry[] | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    slot.referenced = true;
    return slot.entries;
  }

  /** Adds `entry` (most recent first), replacing the variant it shares a variant key with. */
  insert(entry: CachedEntry, bytes: number): void {
    let slot = this.#slots.get(entry.key);
    if (slot === undefined) {
      slot = { entries: [], sizes: [], referenced: false };
      this.#slots.set(entry.key, slot);
    }
    const same = slot.entries.findIndex((e) => e.variant === entry.variant);
    if (same !== -1) {
      this.#removeAt(slot, same, 'replaced');
      if (!this.#slots.has(entry.key)) this.#slots.set(entry.key, slot);
    }
    // A new array: readers holding the old one (a request in progress) keep a consistent view.
    slot.entries = [entry, ...slot.entries];
    slot.sizes = [bytes, ...slot.sizes];
    this.bytes += bytes;
    this.count++;
    for (const tag of entry.tags) {
      let keys = this.#tags.get(tag);
      if (keys === undefined) this.#tags.set(tag, (keys = new Set()));
      keys.add(entry.key);
    }
    while (slot.entries.length > MAX_VARIANTS) this.#removeAt(slot, slot.entries.length - 1, 'removed');
  }

  /** Puts `next` in the place of `previous` (a revalidated description); false when it is gone. */
  replace(previous: CachedEntry, next: CachedEntry, bytes: number): boolean {
    const slot = this.#slots.get(previous.key);
    const at = slot?.entries.indexOf(previous) ?? -1;
    if (slot === undefined || at === -1) return false;
    const entries = [...slot.entries];
    entries[at] = next;
    slot.entries = entries;
    this.bytes += bytes - (slot.sizes[at] ?? 0);
    slot.sizes = [...slot.sizes];
    slot.sizes[at] = bytes;
    return true;
  }

  /** True when `entry` is still in the index. */
  holds(entry: CachedEntry): boolean {
    return this.#slots.get(entry.key)?.entries.includes(entry) ?? false;
  }

  delete(key: string): number {
    const slot = this.#slots.get(key);
    if (slot === undefined) return 0;
    const n = slot.entries.length;
    while (slot.entries.length > 0) this.#removeAt(slot, slot.entries.length - 1, 'removed');
    return n;
  }

  deletePrefix(prefix: string): number {
    let n = 0;
    for (const key of [...this.#slots.keys()]) if (key.startsWith(prefix)) n += this.delete(key);
    return n;
  }

  deleteTag(tag: string): number {
    const keys = this.#tags.get(tag);
    if (keys === undefined) return 0;
    let n = 0;
    for (const key of [...keys]) {
      const slot = this.#slots.get(key);
      if (slot === undefined) continue;
      for (let i = slot.entries.length - 1; i >= 0; i--) {
        if ((slot.entries[i] as CachedEntry).tags.includes(tag)) {
          this.#removeAt(slot, i, 'removed');
          n++;
        }
      }
    }
    return n;
  }

  /** Evicts until at most `maxBytes` are held. */
  evict(maxBytes: number): void {
    // Two passes at most: the first may only clear reference flags.
    let budget = this.#slots.size * 2;
    while (this.bytes > maxBytes && budget-- > 0) {
      const oldest = this.#slots.entries().next();
      if (oldest.done === true) return;
      const [key, slot] = oldest.value;
      if (slot.referenced) {
        slot.referenced = false;
        this.#slots.delete(key);
        this.#slots.set(key, slot);
        continue;
      }
      this.evictions += slot.entries.length;
      this.delete(key);
    }
  }

  keys(): IterableIterator<string> {
    return this.#slots.keys();
  }

  #removeAt(slot: Slot, at: number, why: Removal): void {
    const entry = slot.entries[at] as CachedEntry;
    slot.entries = slot.entries.filter((_, i) => i !== at);
    this.bytes -= slot.sizes[at] ?? 0;
    slot.sizes = slot.sizes.filter((_, i) => i !== at);
    this.count--;
    if (slot.entries.length === 0) this.#slots.delete(entry.key);
    for (const tag of entry.tags) {
      // The key stays tagged while another variant carries the tag.
      if (slot.entries.some((e) => e.tags.includes(tag))) continue;
      const keys = this.#tags.get(tag);
      keys?.delete(entry.key);
      if (keys?.size === 0) this.#tags.delete(tag);
    }
    this.#onRemove(entry, why);
  }

  forEach(visit: (entry: CachedEntry) => void): void {
    for (const slot of this.#slots.values()) for (const entry of slot.entries) visit(entry);
  }

  clear(): void {
    this.#slots.clear();
    this.#tags.clear();
    this.bytes = 0;
    this.count = 0;
  }
}

/** What both stores answer straight from their index: look-ups, purges, limits and stats. */
export abstract class IndexedStore implements CacheStore {
  abstract readonly kind: string;
  protected readonly index: EntryIndex;
  protected limits: StoreLimits;

  constructor(limits: StoreLimits) {
    this.limits = limits;
    this.index = new EntryIndex((entry, why) => this.removed(entry, why));
  }

  /** An entry left the index (a store that holds more than the index releases it here). */
  protected removed(_entry: CachedEntry, _why: Removal): void {}

  abstract open(meta: EntryMeta, expectedSize: number): EntryWriter | null;
  abstract update(entry: CachedEntry, meta: EntryMeta): Promise<CachedEntry | null>;
  abstract ready(): Promise<void>;
  abstract close(): void;

  get(key: string): readonly CachedEntry[] | undefined {
    return this.index.get(key);
  }

  async delete(key: string): Promise<number> {
    return this.index.delete(key);
  }

  async deletePrefix(prefix: string): Promise<number> {
    return this.index.deletePrefix(prefix);
  }

  async deleteTag(tag: string): Promise<number> {
    return this.index.deleteTag(tag);
  }

  configure(limits: StoreLimits): void {
    this.limits = limits;
    this.index.evict(limits.maxSize);
  }

  stats(): StoreStats {
    return {
      kind: this.kind,
      entries: this.index.count,
      bytes: this.index.bytes,
      maxSize: this.limits.maxSize,
      evictions: this.index.evictions,
    };
  }
}
