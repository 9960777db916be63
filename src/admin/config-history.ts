/**
 * The configurations the admin API has seen applied: the running one's text and version, and the
 * last N applied (by the API, a reload or the start), newest first, to show and roll back to.
 * With a configuration file, the history is kept in the state directory so that it survives a
 * restart (one file per configuration file); without one (`gatehouse proxy`, embedded), in memory.
 */
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { sourceTextOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { readIfExists, writePrivateFile } from '../core/state-dir.ts';

/** A configuration's version: the first 12 hex digits of the SHA-256 of its text (stable, content-addressed). */
export function versionOf(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 12);
}

/** The text of a configuration: as read or given, else YAML written from it. */
function textOf(config: Config): string {
  return sourceTextOf(config) ?? stringify(config);
}

/** One applied configuration. */
export interface HistoryEntry {
  readonly version: string;
  /** ISO 8601. */
  readonly applied_at: string;
  /** Who applied it: "start", "reload", or the admin client ("127.0.0.1 (token)"). */
  readonly by: string;
  /** What it changed from the configuration before it, one line per change. */
  readonly changes: readonly string[];
  readonly source: string;
}

/** The running configuration as the admin API shows it. */
export interface Running {
  readonly version: string;
  readonly source: string;
  readonly config: Config;
}

/** The running configuration and the last N applied, newest first. */
export class ConfigHistory {
  readonly #limit: number;
  /** The state file; undefined when kept in memory. */
  readonly #file: string | undefined;
  #entries: HistoryEntry[] = [];
  #running: Running;
  #writes: Promise<void> = Promise.resolve();

  private constructor(running: Running, limit: number, file: string | undefined) {
    this.#running = running;
    this.#limit = limit;
    this.#file = file;
  }

  /**
   * The history of `configFile` (kept in `stateDir`), or an in-memory one when there is no file;
   * `config` is the configuration running now, recorded as applied by "start" unless it is the
   * newest entry already. Nothing is written until a change.
   */
  static async open(config: Config, limit: number, configFile: string | undefined, stateDir: string, onReadError: (error: unknown) => void): Promise<ConfigHistory> {
    const source = textOf(config);
    const running = { version: versionOf(source), source, config };
    const file = configFile === undefined ? undefined : join(stateDir, 'config-history', `${versionOf(resolve(configFile))}.json`);
    const history = new ConfigHistory(running, limit, file);
    if (file !== undefined) {
      try {
        history.#entries = parseEntries(await readIfExists(file)).slice(0, limit);
      } catch (error: unknown) {
        // An unreadable state directory costs the history, not the start.
        onReadError(error);
      }
    }
    if (history.#entries[0]?.version !== running.version) history.#add({ version: running.version, applied_at: new Date().toISOString(), by: 'start', changes: [], source });
    return history;
  }

  get running(): Running {
    return this.#running;
  }

  get entries(): readonly HistoryEntry[] {
    return this.#entries;
  }

  /** Whether the history survives a restart (kept in the state directory). */
  get persisted(): boolean {
    return this.#file !== undefined;
  }

  /** The text of an applied version, or undefined when it is not (or no longer) kept. */
  source(version: string): string | undefined {
    if (version === this.#running.version) return this.#running.source;
    return this.#entries.find((entry) => entry.version === version)?.source;
  }

  /**
   * `config` became the running configuration; `changes` says what it changed. The same text
   * again (a reload of an unchanged file) adds no entry.
   */
  committed(config: Config, by: string, changes: readonly string[]): void {
    const source = textOf(config);
    const version = versionOf(source);
    const same = version === this.#running.version;
    this.#running = { version, source, config };
    if (same) return;
    this.#add({ version, applied_at: new Date().toISOString(), by, changes, source });
    // A failed write fails its own flush, not every one after it.
    this.#writes = this.#writes.catch(() => undefined).then(() => this.#save());
  }

  /** Resolves once every change so far is written (rejects when the last write failed). */
  flushed(): Promise<void> {
    return this.#writes;
  }

  #add(entry: HistoryEntry): void {
    this.#entries.unshift(entry);
    if (this.#entries.length > this.#limit) this.#entries.length = this.#limit;
  }

  async #save(): Promise<void> {
    if (this.#file === undefined) return;
    await writePrivateFile(this.#file, `${JSON.stringify({ entries: this.#entries }, null, 1)}\n`);
  }
}

/** The entries of a state file; a damaged or foreign one counts as empty (the history is a convenience, not state to stop for). */
function parseEntries(text: string | undefined): HistoryEntry[] {
  if (text === undefined) return [];
  try {
    const parsed = JSON.parse(text) as { entries?: unknown };
    if (!Array.isArray(parsed.entries)) return [];
    return parsed.entries.filter(
      (e): e is HistoryEntry =>
        typeof e === 'object' && e !== null && typeof (e as HistoryEntry).version === 'string' && typeof (e as HistoryEntry).source === 'string' && Array.isArray((e as HistoryEntry).changes),
    );
  } catch {
    return [];
  }
}
