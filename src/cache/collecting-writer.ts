/**
 * A store's writer for stores that keep whole bodies (memory, memory in front of Redis): collects
 * the body up to the store's per-object cap and commits it when complete. Past the cap it keeps
 * nothing but goes on accepting, so that the client's stream flows on.
 */
import { Writable } from 'node:stream';
import type { CachedEntry, EntryMeta } from './entry.ts';
import type { EntryWriter } from './store.ts';

/** Makes the entry of a complete body (`size` bytes in `chunks`) and keeps it. */
export type CommitBody = (meta: EntryMeta, chunks: Buffer[], size: number) => CachedEntry;

export class CollectingWriter extends Writable implements EntryWriter {
  readonly stored: Promise<CachedEntry | null>;
  readonly #meta: EntryMeta;
  readonly #max: number;
  readonly #commit: CommitBody;
  #resolve: (entry: CachedEntry | null) => void = () => {};
  #chunks: Buffer[] = [];
  #size = 0;
  #abandoned = false;

  constructor(meta: EntryMeta, maxObjectSize: number, commit: CommitBody) {
    super();
    this.#meta = meta;
    this.#max = maxObjectSize;
    this.#commit = commit;
    this.stored = new Promise((resolve) => (this.#resolve = resolve));
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (!this.#abandoned) {
      this.#size += chunk.length;
      if (this.#size > this.#max) {
        this.#abandoned = true;
        this.#chunks = [];
      } else if (chunk.length > 0) this.#chunks.push(chunk);
    }
    callback();
  }

  override _final(callback: (error?: Error | null) => void): void {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#resolve(this.#abandoned ? null : this.#commit(this.#meta, chunks, this.#size));
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#chunks = [];
    this.#resolve(null);
    callback(error);
  }
}
