/**
 * The on-disk store: survives restarts. Each entry is two files under `<path>/<2 hex>/`:
 * `<hash>` holds its description (JSON, with a generation id) and `<hash>.<generation>` its body.
 * Bodies are streamed to a temporary file and renamed into place, then the description is written
 * to a temporary file and renamed over the old one, so that every change is atomic: after a crash
 * the loader finds either the old entry or the new one, and deletes bodies nothing describes.
 * A 304 revalidation rewrites only the description. The index (keys, descriptions, sizes) is kept
 * in memory and rebuilt from the files at start, in the background; bodies are read from disk.
 * One process per directory (a lock file holds the owner's pid).
 */
import { randomBytes, createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { isEntryMeta, metaBytes, prepareEntry, type CachedEntry, type EntryMeta, type StoredBody } from './entry.ts';
import { IndexedStore, type Removal } from './lru-index.ts';
import type { EntryWriter, StoreLimits } from './store.ts';

/** How often a store waiting for the replaced process's directory looks at the lock. */
const LOCK_POLL_MS = 50;

/** The description file's format version: files of another version are discarded. */
const FORMAT = 1;

interface DescriptionFile {
  readonly v: number;
  readonly gen: string;
  readonly meta: EntryMeta;
}

/** Where an entry's files are. */
interface DiskLocation {
  readonly metaPath: string;
  readonly bodyPath: string;
  readonly gen: string;
}

export class DiskStore extends IndexedStore {
  readonly kind = 'disk';
  readonly #dir: string;
  readonly #tmp: string;
  readonly #lock: string;
  readonly #locations = new WeakMap<CachedEntry, DiskLocation>();
  readonly #ready: Promise<void>;
  /** Body files of the writers opened while the index is loading (null after): not orphans. */
  #opened: Set<string> | null = new Set();
  #closed = false;
  /** The directory is still the replaced process's (an upgrade): nothing is written until it lets go. */
  #waiting = false;

  /** `predecessor`: the pid of the process this one replaces; a lock it holds is waited for instead of refused. */
  constructor(dir: string, limits: StoreLimits, predecessor: number | null = null) {
    super(limits);
    this.#dir = dir;
    this.#tmp = join(dir, 'tmp');
    this.#lock = join(dir, 'lock');
    mkdirSync(this.#tmp, { recursive: true });
    this.#waiting = !takeLock(this.#lock, predecessor);
    this.#ready = this.#waiting ? this.#takeOver(predecessor as number).then((taken) => (taken ? this.#load() : undefined)) : this.#load();
  }

  /**
   * Waits until the replaced process lets the directory go (at its hand-over, or when it exits),
   * then takes the lock; until then this store misses and stores nothing, so that the two
   * processes never write the directory at once.
   */
  async #takeOver(predecessor: number): Promise<boolean> {
    for (;;) {
      // Closed first (this process stops): the directory, its files included, stays the other's.
      if (this.#closed) return false;
      if (takeLock(this.#lock, predecessor)) break;
      await sleep(LOCK_POLL_MS);
    }
    this.#waiting = false;
    return true;
  }

  open(meta: EntryMeta, expectedSize: number): EntryWriter | null {
    if (this.#closed || this.#waiting || expectedSize > this.limits.maxObjectSize) return null;
    const hash = hashOf(meta.key, meta.variant);
    const gen = randomBytes(8).toString('hex');
    const dir = join(this.#dir, hash.slice(0, 2));
    const location: DiskLocation = { metaPath: join(dir, hash), bodyPath: join(dir, `${hash}.${gen}`), gen };
    this.#opened?.add(location.bodyPath);
    return new DiskWriter(location, join(this.#tmp, `${hash}.${gen}`), this.limits.maxObjectSize, (size) => this.#commit(meta, location, size));
  }

  async update(entry: CachedEntry, meta: EntryMeta): Promise<CachedEntry | null> {
    const location = this.#locations.get(entry);
    if (location === undefined || !this.index.holds(entry)) return null;
    const next = prepareEntry({ ...meta, size: entry.size }, entry.body);
    await this.#writeDescription(next.meta, location);
    if (!this.index.replace(entry, next, diskBytes(next))) return null;
    this.#locations.set(next, location);
    return next;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Still waiting for the replaced process: the lock is its own.
    if (this.#waiting) return;
    try {
      unlinkSync(this.#lock);
    } catch {
      // Already gone: nothing to release.
    }
  }

  /** The body is in place: write its description and make it visible. */
  async #commit(meta: EntryMeta, location: DiskLocation, size: number): Promise<CachedEntry | null> {
    const entry = prepareEntry({ ...meta, size }, diskBody(location.bodyPath));
    const bytes = diskBytes(entry);
    if (this.#closed || bytes > this.limits.maxSize) {
      await unlink(location.bodyPath).catch(ignore);
      return null;
    }
    await this.#writeDescription(entry.meta, location);
    if (this.#closed) return null;
    this.#locations.set(entry, location);
    this.index.insert(entry, bytes);
    this.index.evict(this.limits.maxSize);
    return this.index.holds(entry) ? entry : null;
  }

  async #writeDescription(meta: EntryMeta, location: DiskLocation): Promise<void> {
    const file: DescriptionFile = { v: FORMAT, gen: location.gen, meta };
    const tmp = join(this.#tmp, `${randomBytes(8).toString('hex')}.json`);
    await writeFile(tmp, JSON.stringify(file));
    await rename(tmp, location.metaPath);
  }

  /** An entry left the index: delete its body, and its description unless a newer one took its name. */
  protected override removed(entry: CachedEntry, why: Removal): void {
    const location = this.#locations.get(entry);
    if (location === undefined) return;
    void unlink(location.bodyPath).catch(ignore);
    if (why === 'removed') {
      // The description may by now be a newer generation's (written while this one was evicted).
      void readDescription(location.metaPath).then((file) => {
        if (file !== null && file.gen === location.gen) return unlink(location.metaPath).catch(ignore);
        return undefined;
      });
    }
  }

  /** Rebuilds the index from the files; deletes leftovers of interrupted writes. */
  async #load(): Promise<void> {
    try {
      await this.#scan();
    } finally {
      this.#opened = null;
    }
  }

  async #scan(): Promise<void> {
    await rm(this.#tmp, { recursive: true, force: true });
    await mkdir(this.#tmp, { recursive: true });
    const subdirs = (await readdir(this.#dir)).filter((name) => /^[0-9a-f]{2}$/.test(name));
    for (const sub of subdirs) {
      if (this.#closed) return;
      const dir = join(this.#dir, sub);
      const names = await readdir(dir).catch(() => [] as string[]);
      const bodies = new Set(names.filter((n) => n.includes('.')));
      for (const name of names) {
        if (name.includes('.')) continue;
        const metaPath = join(dir, name);
        const file = await readDescription(metaPath);
        const bodyName = file === null ? '' : `${name}.${file.gen}`;
        const size = file === null || !bodies.has(bodyName) ? -1 : await stat(join(dir, bodyName)).then((s) => s.size, () => -1);
        if (file === null || size !== file.meta.size || this.#closed) {
          await unlink(metaPath).catch(ignore);
          continue;
        }
        bodies.delete(bodyName);
        // A newer entry written since start wins over the one on disk.
        if (this.index.get(file.meta.key)?.some((e) => e.variant === file.meta.variant)) continue;
        const location: DiskLocation = { metaPath, bodyPath: join(dir, bodyName), gen: file.gen };
        const entry = prepareEntry(file.meta, diskBody(location.bodyPath));
        this.#locations.set(entry, location);
        this.index.insert(entry, diskBytes(entry));
        this.index.evict(this.limits.maxSize);
      }
      // Bodies no description refers to: interrupted writes, or replaced generations; not those
      // written since start (their description may not be written yet).
      for (const orphan of bodies) {
        const path = join(dir, orphan);
        if (this.#opened?.has(path) !== true) await unlink(path).catch(ignore);
      }
    }
  }
}

/** Streams a body into a temporary file, moved into place when complete. */
class DiskWriter extends Writable implements EntryWriter {
  readonly stored: Promise<CachedEntry | null>;
  readonly #location: DiskLocation;
  readonly #tmpPath: string;
  readonly #max: number;
  readonly #commit: (size: number) => Promise<CachedEntry | null>;
  #resolve: (entry: CachedEntry | null) => void = () => {};
  #file: FileHandle | null = null;
  #size = 0;
  #abandoned = false;

  constructor(location: DiskLocation, tmpPath: string, max: number, commit: (size: number) => Promise<CachedEntry | null>) {
    super();
    this.#location = location;
    this.#tmpPath = tmpPath;
    this.#max = max;
    this.#commit = commit;
    this.stored = new Promise((resolve) => (this.#resolve = resolve));
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.#tmpPath, 'w').then(
      (file) => {
        this.#file = file;
        callback();
      },
      () => {
        // The store cannot write (disk full, permissions): the response still reaches the client.
        this.#abandoned = true;
        callback();
      },
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#append([chunk], callback);
  }

  override _writev(chunks: { chunk: Buffer }[], callback: (error?: Error | null) => void): void {
    this.#append(chunks.map((c) => c.chunk), callback);
  }

  /** Writes the buffers to the file; past the object limit, or when the file fails, gives up (and still accepts). */
  #append(buffers: Buffer[], callback: () => void): void {
    const file = this.#file;
    if (this.#abandoned || file === null) {
      callback();
      return;
    }
    for (const b of buffers) this.#size += b.length;
    if (this.#size > this.#max) {
      this.#abandon();
      callback();
      return;
    }
    file.writev(buffers).then(
      () => callback(),
      () => {
        this.#abandon();
        callback();
      },
    );
  }

  override _final(callback: (error?: Error | null) => void): void {
    const file = this.#file;
    if (this.#abandoned || file === null) {
      this.#resolve(null);
      callback();
      return;
    }
    this.#file = null;
    file
      .close()
      .then(() => mkdir(join(this.#location.bodyPath, '..'), { recursive: true }))
      .then(() => rename(this.#tmpPath, this.#location.bodyPath))
      .then(() => this.#commit(this.#size))
      .then(
        (entry) => {
          this.#resolve(entry);
          callback();
        },
        () => {
          void unlink(this.#tmpPath).catch(ignore);
          this.#resolve(null);
          callback();
        },
      );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#abandon();
    this.#resolve(null);
    callback(error);
  }

  #abandon(): void {
    this.#abandoned = true;
    const file = this.#file;
    this.#file = null;
    const tmp = this.#tmpPath;
    if (file !== null) void file.close().then(() => unlink(tmp)).catch(ignore);
  }
}

/** What an entry of this store takes in the index's accounting: its body and its description. */
function diskBytes(entry: CachedEntry): number {
  return entry.size + metaBytes(entry.meta);
}

function diskBody(path: string): StoredBody {
  return {
    chunks: null,
    text: null,
    open: async (start, end) => {
      const file = await open(path, 'r');
      return file.createReadStream({ start, end, autoClose: true });
    },
  };
}

async function readDescription(path: string): Promise<DescriptionFile | null> {
  try {
    const file: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (typeof file !== 'object' || file === null) return null;
    const { v, gen, meta } = file as Record<string, unknown>;
    if (v !== FORMAT || typeof gen !== 'string' || !/^[0-9a-f]+$/.test(gen) || !isEntryMeta(meta)) return null;
    return { v, gen, meta };
  } catch {
    return null;
  }
}

function hashOf(key: string, variant: string): string {
  return createHash('sha256').update(key).update('\n').update(variant).digest('hex');
}

/**
 * Takes the directory's lock file, holding this process's pid. A lock left by a process that is
 * gone is taken over; one held by a live process is an error (two writers would corrupt the index),
 * except by `predecessor` (the process an upgrade replaces): false then, to wait until it lets go.
 */
function takeLock(path: string, predecessor: number | null = null): boolean {
  try {
    const fd = openSync(path, 'wx');
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (error: unknown) {
    if ((error as { code?: unknown }).code !== 'EEXIST') throw error;
  }
  let owner: number;
  try {
    owner = Number(readFileSync(path, 'utf8').trim());
  } catch (error: unknown) {
    // Let go between the two calls (the replaced process handing over): try again.
    if ((error as { code?: unknown }).code === 'ENOENT') return takeLock(path, predecessor);
    throw error;
  }
  if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
    if (owner === predecessor) return false;
    throw new Error(`cache directory ${join(path, '..')} is in use by process ${owner}`);
  }
  const fd = openSync(path, 'w');
  writeSync(fd, String(process.pid));
  closeSync(fd);
  return true;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    return (error as { code?: unknown }).code === 'EPERM';
  }
}

function ignore(): void {}
