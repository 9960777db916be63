/**
 * IP list files shared by every instance through Redis: when one instance re-reads a list file
 * that changed, the new contents (with the file's time) are published, and every instance whose
 * configuration names the same path uses them, within a message's time, as if its own copy had
 * changed. The latest contents of each path are also kept in Redis, so that an instance that
 * starts, or comes back after Redis was away, takes them up when they are newer than its own
 * file, or publishes its own when its file is newer: the newest copy wins everywhere. Times are
 * file modification times: keep the machines' clocks in sync (NTP).
 */
import type { RedisState } from '../../core/redis-state.ts';
import type { IpListFile } from './ip-list-file.ts';

const CHANNEL = 'iplists';

/** One list's contents as published and stored. */
interface SharedList {
  readonly path: string;
  readonly text: string;
  readonly at: number;
}

export class RedisListSharing {
  readonly #redis: RedisState;
  readonly #files = new Map<string, IpListFile>();

  constructor(redis: RedisState) {
    this.#redis = redis;
    redis.subscribe(CHANNEL, (payload) => {
      if (!isSharedList(payload)) return;
      this.#files.get(payload.path)?.applyShared(payload.text, payload.at);
    });
    redis.onRecover(() => {
      for (const file of this.#files.values()) void this.#sync(file);
    });
  }

  /** Shares `file` (a list file the configuration uses) from now on. */
  attach(file: IpListFile): void {
    this.#files.set(file.path, file);
    file.onReread = (text, at) => this.#tell({ path: file.path, text, at });
    if (this.#redis.available) void this.#sync(file);
  }

  detach(file: IpListFile): void {
    if (this.#files.get(file.path) === file) this.#files.delete(file.path);
    file.onReread = null;
  }

  #key(path: string): string {
    return `${this.#redis.prefix}iplist:${path}`;
  }

  /** The newer of this instance's copy and the stored one wins. */
  async #sync(file: IpListFile): Promise<void> {
    let raw: string | null;
    try {
      raw = await this.#redis.client.get(this.#key(file.path));
    } catch (error: unknown) {
      this.#redis.failed(error);
      return;
    }
    const stored = parse(raw);
    if (stored !== null && stored.at >= file.changedAt) {
      file.applyShared(stored.text, stored.at);
      return;
    }
    this.#tell({ path: file.path, text: file.text, at: file.changedAt });
  }

  #tell(list: SharedList): void {
    if (!this.#redis.publish(CHANNEL, list)) return;
    this.#redis.client.set(this.#key(list.path), JSON.stringify(list)).catch(this.#redis.failed);
  }
}

function parse(raw: string | null): SharedList | null {
  if (raw === null) return null;
  try {
    const value: unknown = JSON.parse(raw);
    return isSharedList(value) ? value : null;
  } catch {
    return null;
  }
}

function isSharedList(value: unknown): value is SharedList {
  if (typeof value !== 'object' || value === null) return false;
  const list = value as Record<string, unknown>;
  return typeof list.path === 'string' && typeof list.text === 'string' && typeof list.at === 'number';
}
