/**
 * An IP list kept in a file (one address or CIDR range per line) and read again when the file
 * changes. The folder is watched rather than the file, so that an editor or a deploy tool that
 * replaces the file by renaming a new one over it is seen too.
 */
import { readFileSync, statSync, watch, type FSWatcher } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { IpSet } from './ip-set.ts';
import { errorMessage } from '../../core/caught.ts';

/** Where a reloaded file's outcome is reported. */
export type ListFileLog = (level: 'info' | 'warn', fields: Record<string, unknown>, message: string) => void;

export class IpListFile {
  readonly path: string;
  /** The current contents; replaced whole on a successful re-read. */
  current: IpSet;
  /** Successful re-reads so far. */
  version = 0;
  /** Re-reads that failed (the previous contents stayed). */
  errors = 0;
  /** When the contents were written (the file's mtime, or another instance's change), epoch ms. */
  changedAt = 0;
  /** The contents as text, for instances that share lists (state.redis). */
  text: string;
  /** Told of each re-read of the file (not of contents applied from elsewhere); null when nobody listens. */
  onReread: ((text: string, at: number) => void) | null = null;
  #watcher: FSWatcher | null = null;
  #timer: NodeJS.Timeout | null = null;
  #reading = false;
  #again = false;
  readonly #onChange: () => void;
  readonly #log: ListFileLog;

  /** Reads the file now; throws (with `file:line` for a bad entry) when it cannot be used. */
  constructor(path: string, onChange: () => void, log: ListFileLog) {
    this.path = resolve(path);
    this.#onChange = onChange;
    this.#log = log;
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
      this.changedAt = statSync(this.path).mtimeMs;
    } catch (error: unknown) {
      throw new Error(`${path}: cannot read the IP list: ${errorMessage(error)}`, { cause: error });
    }
    this.current = IpSet.fromText(text, path);
    this.text = text;
    this.#watch();
  }

  /**
   * Contents another instance read from its copy of this file (shared through Redis), used when
   * newer than what this instance has; nothing changes when they are older or not valid.
   */
  applyShared(text: string, at: number): void {
    if (at <= this.changedAt || text === this.text) return;
    let next: IpSet;
    try {
      next = IpSet.fromText(text, this.path);
    } catch (error: unknown) {
      this.#log('warn', { file: this.path, error: errorMessage(error) }, 'IP list from another instance not applied');
      return;
    }
    this.#use(next, text, at, 'IP list changed by another instance');
  }

  /** Makes `next` (read from `text`, written at `at`) the current contents, and says so. */
  #use(next: IpSet, text: string, at: number, message: string): void {
    this.current = next;
    this.text = text;
    this.changedAt = at;
    this.version++;
    this.#onChange();
    this.#log('info', { file: this.path, entries: next.entries }, message);
  }

  #watch(): void {
    const name = basename(this.path);
    try {
      this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === name) this.#schedule();
      });
      this.#watcher.on('error', (error: Error) => this.#log('warn', { file: this.path, error: error.message }, 'cannot watch IP list'));
    } catch (error: unknown) {
      this.#log('warn', { file: this.path, error: errorMessage(error) }, 'cannot watch IP list');
    }
  }

  /** Several events arrive for one save; read once they have settled. */
  #schedule(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.reload();
    }, 50);
    this.#timer.unref();
  }

  /** Reads the file again; a missing or bad file keeps the previous contents (and says so). */
  async reload(): Promise<void> {
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    try {
      const text = await readFile(this.path, 'utf8');
      const at = (await stat(this.path)).mtimeMs;
      this.#use(IpSet.fromText(text, this.path), text, at, 'IP list reloaded');
      this.onReread?.(text, at);
    } catch (error: unknown) {
      this.errors++;
      this.#log('warn', { file: this.path, error: errorMessage(error) }, 'IP list not reloaded, keeping the previous one');
    } finally {
      this.#reading = false;
      if (this.#again) {
        this.#again = false;
        void this.reload();
      }
    }
  }

  close(): void {
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#timer !== null) clearTimeout(this.#timer);
  }
}
