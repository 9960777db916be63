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
  /**
   * Most recent first. Never changed in place: each change makes one new array, so that readers
   * holding the old one (a request in progress) keep a consistent view.
   */
  entries: readonly CachedEntry[];
  /** Accounted bytes of each entry, parallel to `entries`; read only here, so changed in place. */
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

  get(key: string): readonly CachedEntry[] | undefined {
    const slot = this.#slots.get(key);
    if (slot === undefined) return undefined;
    slot.referenced = true;
    return slot.entries;
  }

  /** Adds `entry` (most recent first), replacing the variant it shares a variant key with. */
  insert(entry: CachedEntry, bytes: number): void {
    const key = entry.key;
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = { entries: [], sizes: [], referenced: false };
      this.#slots.set(key, slot);
    } else if (slot.entries.length === 1 && slot.entries[0]?.variant === entry.variant) {
      // Replacing a key's only entry makes the key the newest.
      this.#slots.delete(key);
      this.#slots.set(key, slot);
    }
    this.bytes += bytes;
    this.count++;
    for (const tag of entry.tags) {
      let keys = this.#tags.get(tag);
      if (keys === undefined) this.#tags.set(tag, (keys = new Set()));
      keys.add(key);
    }
    this.#rebuild(key, slot, entry, bytes, (e) => e.variant === entry.variant, 'replaced');
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
    slot.sizes[at] = bytes;
    return true;
  }

  /** True when `entry` is still in the index. */
  holds(entry: CachedEntry): boolean {
    return this.#slots.get(entry.key)?.entries.includes(entry) ?? false;
  }

  delete(key: string): number {
    const slot = this.#slots.get(key);
    return slot === undefined ? 0 : this.#rebuild(key, slot, null, 0, () => true, 'removed');
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
      if (slot !== undefined) n += this.#rebuild(key, slot, null, 0, (e) => e.tags.includes(tag), 'removed');
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

  /**
   * Gives `slot` its new entries in one pass (one new array): `first`, when given, then the old
   * entries `drop` spares, at most MAX_VARIANTS. The others leave the index, the dropped ones for
   * `why`, those past the limit 'removed'. Returns how many left.
   */
  #rebuild(key: string, slot: Slot, first: CachedEntry | null, firstBytes: number, drop: (entry: CachedEntry) => boolean, why: Removal): number {
    const old = slot.entries;
    const oldSizes = slot.sizes;
    const entries: CachedEntry[] = first === null ? [] : [first];
    const sizes: number[] = first === null ? [] : [firstBytes];
    const gone: CachedEntry[] = [];
    for (let i = 0; i < old.length; i++) {
      const entry = old[i] as CachedEntry;
      if (!drop(entry) && entries.length < MAX_VARIANTS) {
        entries.push(entry);
        sizes.push(oldSizes[i] as number);
      } else {
        gone.push(entry);
        this.bytes -= oldSizes[i] as number;
      }
    }
    slot.entries = entries;
    slot.sizes = sizes;
    if (gone.length === 0) return 0;
    this.count -= gone.length;
    if (entries.length === 0) this.#slots.delete(key);
    for (const entry of gone) {
      for (const tag of entry.tags) {
        // The key stays tagged while another variant carries the tag.
        if (entries.some((e) => e.tags.includes(tag))) continue;
        const keys = this.#tags.get(tag);
        keys?.delete(key);
        if (keys?.size === 0) this.#tags.delete(tag);
      }
    }
    for (const entry of gone) this.#onRemove(entry, drop(entry) ? why : 'removed');
    return gone.length;
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
