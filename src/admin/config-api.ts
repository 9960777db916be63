/**
 * The admin API's configuration endpoints: the running configuration, validating a candidate,
 * its diff against the running one, applying it (through the same prepare → commit/abort path as
 * a SIGHUP reload, every worker or none), the history of applied configurations and rollback.
 *
 *   GET  /config                     { version, source, config }
 *   POST /config/validate            YAML (or JSON) text → { valid } or 422 with the problems
 *   POST /config/diff                → { valid, changes, unified }
 *   POST /config/apply               → { applied, version, changes }; If-Match: VERSION or 409
 *   GET  /config/history             { current, persisted, entries }
 *   GET  /config/history/{version}   { version, source }
 *   POST /config/rollback/{version}  as apply, with that version's text
 *
 * Applied text is written to the configuration file (a temporary file renamed over it, same
 * mode) once the reload has committed, so that a later SIGHUP or restart keeps it.
 */
import { chmod, realpath, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { changeLines, diffConfigs } from '../config/diff.ts';
import { temporaryName } from '../core/state-dir.ts';
import { parseConfigText } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import { ConfigError } from '../core/errors.ts';
import type { AdminAnswer } from './admin.ts';
import { readBody } from './body.ts';
import type { ConfigHistory } from './config-history.ts';
import { unifiedDiff } from './unified-diff.ts';
import { errorMessage } from '../core/caught.ts';

/** A candidate configuration larger than this is refused (413): configurations are text of kilobytes. */
const MAX_BODY_BYTES = 4 * 1024 * 1024;

/** The configuration endpoints, for the router's list and the OpenAPI test. */
export const CONFIG_ENDPOINTS = [
  'GET /config',
  'POST /config/validate',
  'POST /config/diff',
  'POST /config/apply',
  'GET /config/history',
  'GET /config/history/{version}',
  'POST /config/rollback/{version}',
];

/** What applying needs from the running proxy (a Gatehouse, or the primary of worker threads). */
export interface ConfigTarget {
  /** Moves to `next` through prepare → commit (all workers or none); rejects, having changed nothing, when it cannot. */
  reload(next: Config): Promise<void>;
}

/** The change being applied: the commit it causes is recorded as this client's. */
interface Applying {
  readonly config: Config;
  readonly by: string;
}

/** A request's answer, with a summary for the audit log when it changed something. */
export interface ConfigAnswer extends AdminAnswer {
  readonly changed?: { readonly version: string; readonly changes: readonly string[] };
}

/** The configuration endpoints over one history; told of every committed reload. */
export class ConfigApi {
  readonly #target: ConfigTarget;
  readonly #history: ConfigHistory;
  /** The configuration file applied text is written to; undefined when running without one. */
  readonly #file: string | undefined;
  #applying: Applying | undefined;
  #applies: Promise<unknown> = Promise.resolve();

  constructor(target: ConfigTarget, history: ConfigHistory, file: string | undefined) {
    this.#target = target;
    this.#history = history;
    this.#file = file;
  }

  get history(): ConfigHistory {
    return this.#history;
  }

  /** A reload committed `config` (told by the proxy after every commit: SIGHUP, POST /reload, apply). */
  committed(config: Config): void {
    const by = this.#applying?.config === config ? this.#applying.by : 'reload';
    const changes = changeLines(diffConfigs(this.#history.running.config, config));
    this.#history.committed(config, by, changes);
  }

  /** The answer to a configuration endpoint, or null when `path` is not one. `who` names the client for the history. */
  handle(req: IncomingMessage, path: string, who: string): Promise<ConfigAnswer> | null {
    const method = req.method;
    if (path === '/config' && method === 'GET') {
      const { version, source, config } = this.#history.running;
      // The version as an ETag too, for editors that send it back in If-Match.
      return Promise.resolve({ status: 200, body: { version, source, config }, headers: { etag: `"${version}"` } });
    }
    if (path === '/config/history' && method === 'GET') {
      const entries = this.#history.entries.map(({ source: _source, ...entry }) => entry);
      return Promise.resolve({ status: 200, body: { current: this.#history.running.version, persisted: this.#history.persisted, entries } });
    }
    if (path.startsWith('/config/history/') && method === 'GET') {
      const version = decodeURIComponent(path.slice('/config/history/'.length));
      const source = this.#history.source(version);
      return Promise.resolve(source === undefined ? notKept(version) : { status: 200, body: { version, source } });
    }
    if (method !== 'POST') return null;
    if (path === '/config/validate') return withBody(req, (text) => this.#validate(text));
    if (path === '/config/diff') return withBody(req, (text) => this.#diff(text));
    if (path === '/config/apply') return withBody(req, (text) => this.#serially(() => this.#apply(text, ifMatch(req), who)));
    if (path.startsWith('/config/rollback/')) {
      const version = decodeURIComponent(path.slice('/config/rollback/'.length));
      return this.#serially(() => {
        const source = this.#history.source(version);
        return source === undefined ? Promise.resolve(notKept(version)) : this.#apply(source, ifMatch(req), who);
      });
    }
    return null;
  }

  #validate(text: string): ConfigAnswer {
    const parsed = this.#parse(text);
    return parsed instanceof ConfigError ? invalid(parsed) : { status: 200, body: { valid: true } };
  }

  #diff(text: string): ConfigAnswer {
    const parsed = this.#parse(text);
    if (parsed instanceof ConfigError) return invalid(parsed);
    const running = this.#history.running;
    return { status: 200, body: { valid: true, changes: changeLines(diffConfigs(running.config, parsed)), unified: unifiedDiff(running.source, text) } };
  }

  /** One apply (or rollback) at a time: each compares against the configuration the one before it left. */
  #serially(task: () => Promise<ConfigAnswer>): Promise<ConfigAnswer> {
    const run = this.#applies.then(task);
    this.#applies = run.catch(() => undefined);
    return run;
  }

  async #apply(text: string, expected: string | undefined, who: string): Promise<ConfigAnswer> {
    const config = this.#parse(text);
    if (config instanceof ConfigError) return invalid(config);
    const running = this.#history.running;
    if (expected !== undefined && expected !== running.version) {
      return { status: 409, body: { applied: false, error: `the running configuration is ${running.version}, not ${expected}`, current: running.version } };
    }
    const changes = changeLines(diffConfigs(running.config, config));
    // Written beside the file first (a full disk or a read-only directory stops the apply before it changes anything).
    let temporary: { path: string; target: string } | undefined;
    try {
      if (this.#file !== undefined) temporary = await writeBeside(this.#file, text);
    } catch (error: unknown) {
      return { status: 500, body: { applied: false, error: `cannot write ${this.#file}: ${errorMessage(error)}` } };
    }
    this.#applying = { config, by: who };
    try {
      await this.#target.reload(config);
    } catch (error: unknown) {
      if (temporary !== undefined) await unlink(temporary.path).catch(() => undefined);
      return { status: 500, body: { applied: false, error: errorMessage(error) } };
    } finally {
      this.#applying = undefined;
    }
    const version = this.#history.running.version;
    const body: Record<string, unknown> = { applied: true, version, changes, persisted: this.#file !== undefined };
    if (temporary !== undefined) {
      try {
        await rename(temporary.path, temporary.target);
      } catch (error: unknown) {
        body.persisted = false;
        body.warning = `running, but not written to ${this.#file}: ${errorMessage(error)}; a reload from the file would go back`;
      }
    }
    try {
      await this.#history.flushed();
    } catch (error: unknown) {
      body.warning = `the history could not be written: ${errorMessage(error)}`;
    }
    if (this.#file === undefined) body.note = 'no configuration file: the change and the history are kept in memory only, until the process ends';
    return { status: 200, body, changed: { version, changes } };
  }

  #parse(text: string): Config | ConfigError {
    try {
      return parseConfigText(text, this.#file ?? 'candidate');
    } catch (error: unknown) {
      if (error instanceof ConfigError) return error;
      throw error;
    }
  }
}

function invalid(error: ConfigError): ConfigAnswer {
  return { status: 422, body: { valid: false, errors: error.problems, message: error.message } };
}

function notKept(version: string): ConfigAnswer {
  return { status: 404, body: { error: `no configuration ${version} in the history` } };
}

/** The version an If-Match header names (an ETag's quotes and W/ dropped), or undefined. */
function ifMatch(req: IncomingMessage): string | undefined {
  const value = req.headers['if-match'];
  if (value === undefined || value === '' || value === '*') return undefined;
  return value.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

/** Reads the request body as UTF-8 text, then answers from it; 413 beyond MAX_BODY_BYTES. */
async function withBody(req: IncomingMessage, answer: (text: string) => ConfigAnswer | Promise<ConfigAnswer>): Promise<ConfigAnswer> {
  const text = await readBody(req, MAX_BODY_BYTES);
  if (typeof text !== 'string') return text;
  if (text.trim() === '') return { status: 400, body: { error: 'send the configuration text as the request body' } };
  return answer(text);
}


/**
 * Writes `text` to a new file beside `file` (beside the file a symbolic link points to, so that the
 * link stays), with its mode; the caller renames it over `target` (atomic on one filesystem).
 */
async function writeBeside(file: string, text: string): Promise<{ path: string; target: string }> {
  const target = await realpath(file).catch(() => file);
  const mode = (await stat(target).catch(() => undefined))?.mode;
  const path = temporaryName(target);
  try {
    await writeFile(path, text, { mode: mode === undefined ? 0o644 : mode & 0o7777 });
    // The mode given to writeFile is masked by the umask: set it as the file had it.
    if (mode !== undefined) await chmod(path, mode & 0o7777);
  } catch (error: unknown) {
    // A full disk leaves no half file beside the configuration (as core/state-dir.ts writePrivateFile).
    await rm(path, { force: true });
    throw error;
  }
  return { path, target };
}
