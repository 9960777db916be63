/**
 * The in-memory store (the default): bodies are kept as the Buffers that went to the client, by
 * reference, so storing a response copies nothing. Bodies up to 16 KiB are kept as latin1 text
 * instead: node:http writes a string body with its head in one write (and the text pins no larger
 * socket buffer). Bounded by bytes with CLOCK eviction (lru-index.ts).
 */
import { Readable } from 'node:stream';
import { getHeapStatistics } from 'node:v8';
import { metaBytes, prepareEntry, type CachedEntry, type EntryMeta, type StoredBody } from './entry.ts';
import { CollectingWriter, type CommitBody } from './collecting-writer.ts';
import { IndexedStore } from './lru-index.ts';
import type { EntryWriter } from './store.ts';

/** Bodies up to this size are joined into one buffer when stored. */
const JOIN_LIMIT = 64 * 1024;
/** Bodies up to this size are kept as text (StoredBody.text) instead of a buffer. */
const TEXT_LIMIT = 16 * 1024;
/**
 * Text lives on the V8 heap, buffers outside it: text bodies of all memory stores together stay
 * within this share of the heap limit, so that a store sized for the machine cannot exhaust the
 * heap of a smaller process (past it, small bodies are kept as buffers).
 */
const TEXT_HEAP_SHARE = 1 / 8;
const textBudget = { bytes: 0, limit: Math.floor(getHeapStatistics().heap_size_limit * TEXT_HEAP_SHARE) };

export class MemoryStore extends IndexedStore {
  readonly kind = 'memory';

  open(meta: EntryMeta, expectedSize: number): EntryWriter | null {
    if (expectedSize > this.limits.maxObjectSize) return null;
    return new CollectingWriter(meta, this.limits.maxObjectSize, this.put);
  }

  /**
   * Stores a complete body of `size` bytes at once (a writer's, or an entry read from a second
   * tier); returns the entry, which is kept only when it fits the store. Bound once: every
   * writer of this store commits through it (no closure per write).
   */
  readonly put: CommitBody = (meta, chunks, size) => {
    const entry = prepareEntry({ ...meta, size }, memoryBody(chunks, size));
    if (size <= this.limits.maxObjectSize) this.#commit(entry);
    return entry;
  };

  protected override removed(entry: CachedEntry): void {
    if (entry.body.text !== null) textBudget.bytes -= entry.size;
  }

  async update(entry: CachedEntry, meta: EntryMeta): Promise<CachedEntry | null> {
    const next = prepareEntry({ ...meta, size: entry.size }, entry.body);
    return this.index.replace(entry, next, memoryBytes(next)) ? next : null;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.index.forEach((entry) => this.removed(entry));
    this.index.clear();
  }

  #commit(entry: CachedEntry): void {
    const bytes = memoryBytes(entry);
    if (bytes > this.limits.maxSize) return;
    if (entry.body.text !== null) textBudget.bytes += entry.size;
    this.index.insert(entry, bytes);
    this.index.evict(this.limits.maxSize);
  }
}

/** Small bodies become one buffer of their own (not from the shared pool, which it would pin). */
function joinSmall(chunks: Buffer[], size: number): Buffer[] {
  if (chunks.length <= 1 && (chunks[0] === undefined || chunks[0].buffer.byteLength <= size * 2)) return chunks;
  if (size > JOIN_LIMIT) return chunks;
  const joined = Buffer.allocUnsafeSlow(size);
  let offset = 0;
  for (const chunk of chunks) {
    chunk.copy(joined, offset);
    offset += chunk.length;
  }
  return [joined];
}

/** What an entry of this store takes in memory: its body, its description and its serialised head (with Age, twice). */
function memoryBytes(entry: CachedEntry): number {
  return entry.size + metaBytes(entry.meta) + 2 * (entry.serialized?.lines.length ?? 0);
}

/** Text for a small body while the text budget lasts; otherwise the buffers (small ones joined). */
function memoryBody(chunks: Buffer[], size: number): StoredBody {
  if (size > 0 && size <= TEXT_LIMIT && textBudget.bytes + size <= textBudget.limit) {
    return new TextBody(chunks.length === 1 ? (chunks[0] as Buffer).toString('latin1') : chunks.map((chunk) => chunk.toString('latin1')).join(''));
  }
  return new BufferBody(joinSmall(chunks, size));
}

class BufferBody implements StoredBody {
  readonly chunks: readonly Buffer[];
  readonly text = null;

  constructor(chunks: readonly Buffer[]) {
    this.chunks = chunks;
  }

  async open(start: number, end: number): Promise<Readable> {
    return Readable.from(sliceChunks(this.chunks, start, end));
  }
}

/** A small body kept only as text; its buffer is made again when a range or a stream needs it. */
class TextBody implements StoredBody {
  readonly text: string;

  constructor(text: string) {
    this.text = text;
  }

  get chunks(): readonly Buffer[] {
    return [Buffer.from(this.text, 'latin1')];
  }

  async open(start: number, end: number): Promise<Readable> {
    return Readable.from(sliceChunks(this.chunks, start, end));
  }
}

/** The parts of `chunks` covering bytes start..end (inclusive), without copying. */
export function sliceChunks(chunks: readonly Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  for (const chunk of chunks) {
    const chunkEnd = offset + chunk.length; // exclusive
    if (chunkEnd > start && offset <= end) {
      out.push(chunk.subarray(Math.max(0, start - offset), Math.min(chunk.length, end + 1 - offset)));
    }
    offset = chunkEnd;
    if (offset > end) break;
  }
  return out;
}
