/**
 * Reads a YAML (or JSON) configuration and validates it. Every problem is reported as
 * `file:line:col path: what is wrong`, so that the user can go straight to it: the schema's and
 * those that need the whole file (names that refer to other parts, listen addresses that clash)
 * in one pass, sorted by position, each once.
 */
import { accessSync, constants as fsConstants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isNode, isScalar, parseDocument, stringify, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type LocatedProblem } from '../core/errors.ts';
import { accelerationProblems, cacheSchema } from './acceleration-schema.ts';
import { expandEnvironment } from './env.ts';
import { addressClashes, type NamedAddress } from './addresses.ts';
import { fieldsKnownFor, plainMessage } from './messages.ts';
import { formatPath, type PathKey, type Problem } from './problem.ts';
import { configSchema, routeSchema, type Config, type ConfigInput } from './schema.ts';
import { closest, didYouMean, unknownName } from './suggest.ts';
import { acmeProblems } from './tls-schema.ts';
import { backendTlsProblems } from './upstream-tls-schema.ts';
import { errorCodeOrMessage, errorMessage } from '../core/caught.ts';

/** Where each loaded configuration's parts are in its file, for errors found after loading (a bind). */
const sources = new WeakMap<Config, (path: readonly PathKey[]) => string>();

/**
 * The text each configuration was made from: the file's as read, or YAML written from the object
 * a configuration built in code was given (the admin API shows it, versions it and diffs it).
 */
const texts = new WeakMap<Config, string | (() => string)>();

/** The text `config` was made from (see `texts`); undefined for one not made by this module. */
export function sourceTextOf(config: Config): string | undefined {
  const text = texts.get(config);
  return typeof text === 'function' ? text() : text;
}

/** `file:line:col` of a part of a configuration read from a file; undefined for one built in code. */
export function sourceOf(config: Config, path: readonly PathKey[]): string | undefined {
  return sources.get(config)?.(path);
}

/** Reads, parses and validates the file; throws a ConfigError listing every problem. */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    throw new ConfigError(`${file}: cannot read the file: ${errorMessage(error)}`);
  }
  return parseConfigText(text, file);
}

/** Parses and validates configuration text; `file` is used in messages. */
export function parseConfigText(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const where = (offset: number | undefined): string => {
    if (offset === undefined) return file;
    const { line, col } = lineCounter.linePos(offset);
    return `${file}:${line}:${col}`;
  };
  const at = (offset: number | undefined, path: string, message: string): LocatedProblem => {
    const { line, col } = offset === undefined ? { line: 0, col: 0 } : lineCounter.linePos(offset);
    return { line, column: col, path, message };
  };
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => at(e.pos[0], '', e.message.split('\n')[0] ?? ''));
    throw new ConfigError(problems.map((p) => `${file}:${p.line}:${p.column}: ${p.message}`).join('\n'), problems);
  }
  const unset = expandEnvironment(doc);
  if (unset.length > 0) throw new ConfigError(report(unset.map((p) => `${where(p.offset)}: ${p.message}`)), unset.map((p) => at(p.offset, '', p.message)));
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) throw new ConfigError(`${file}: the file is empty`, [at(undefined, '', 'the file is empty')]);
  const { config, problems } = validate(raw);
  if (config === undefined || problems.length > 0) {
    const located = problems.map((p) => ({ offset: offsetOf(doc, p.path, p.atKey), problem: p }));
    // Stable: problems at one position keep the order they were found in.
    located.sort((a, b) => (a.offset ?? Infinity) - (b.offset ?? Infinity));
    // Each problem once, by its line (as report() does for the message).
    const byLine = new Map<string, LocatedProblem>();
    for (const { offset, problem } of located) {
      const line = `${where(offset)} ${formatPath(problem.path)}: ${problem.message}`;
      if (!byLine.has(line)) byLine.set(line, at(offset, formatPath(problem.path), problem.message));
    }
    throw new ConfigError([...byLine.keys()].join('\n'), [...byLine.values()]);
  }
  sources.set(config, (path) => where(offsetOf(doc, path)));
  texts.set(config, text);
  return config;
}

/** Validates a configuration object built in code (the `proxy` command, tests). */
export function configFromObject(input: ConfigInput, origin = '<inline>'): Config {
  const { config, problems } = validate(input);
  if (config === undefined || problems.length > 0) {
    throw new ConfigError(report(problems.map((p) => `${origin} ${formatPath(p.path)}: ${p.message}`)));
  }
  // Written when asked for: most configurations built in code (tests) never are.
  texts.set(config, () => stringify(input));
  return config;
}

/** One line per problem, each once (a check and the schema may find the same thing). */
function report(lines: readonly string[]): string {
  return [...new Set(lines)].join('\n');
}

function validate(raw: unknown): { config: Config | undefined; problems: Problem[] } {
  const result = configSchema.safeParse(raw, { error: plainMessage });
  const config = result.success ? result.data : undefined;
  const problems = result.success ? [] : withoutMisspeltRequired(result.error.issues.flatMap(toProblems));
  problems.push(...crossReferences(raw, config));
  return { config, problems };
}

interface UnknownField extends Problem {
  /** The known field it is probably a misspelling of. */
  readonly near?: string;
}

function toProblems(issue: z.core.$ZodIssue): UnknownField[] {
  const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    const known = fieldsKnownFor(issue.keys);
    return issue.keys.map((key) => {
      const near = closest(key, known);
      const problem = { path: [...path, key], message: `unknown field "${key}"${didYouMean(key, known)}`, atKey: true };
      return near.length === 1 && near[0] !== undefined ? { ...problem, near: near[0] } : problem;
    });
  }
  if (issue.code === 'invalid_key') {
    // A record key (a header name) failed its own check: say why, at the key.
    return [{ path, message: issue.issues[0]?.message ?? issue.message, atKey: true }];
  }
  return [{ path, message: issue.message }];
}

/** `lisen:` makes `listen` missing too; saying so beside "did you mean listen" is noise. */
function withoutMisspeltRequired(problems: readonly UnknownField[]): Problem[] {
  const meant = new Set(problems.filter((p) => p.near !== undefined).map((p) => formatPath([...p.path.slice(0, -1), p.near as string])));
  return problems.filter((p) => !(p.message === 'is required' && meant.has(formatPath(p.path))));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks that need the whole file: names that refer to other parts, addresses that clash. They
 * read the file as written, so that they run even when the schema found problems elsewhere.
 */
function crossReferences(raw: unknown, config: Config | undefined): Problem[] {
  const root = isRecord(raw) ? raw : {};
  const problems: Problem[] = [];
  const upstreams = isRecord(root.upstreams) ? Object.keys(root.upstreams) : [];
  const routes = Array.isArray(root.routes) ? (root.routes as unknown[]) : [];
  routes.forEach((route, i) => {
    if (!isRecord(route) || typeof route.upstream !== 'string' || upstreams.includes(route.upstream)) return;
    problems.push({ path: ['routes', i, 'upstream'], message: unknownName('upstream', route.upstream, upstreams) });
  });
  problems.push(...gslbReferences(root, upstreams, routes));
  const addresses: NamedAddress[] = [];
  if (Array.isArray(root.listen)) {
    (root.listen as unknown[]).forEach((listen, i) => {
      if (isRecord(listen) && typeof listen.address === 'string') addresses.push({ path: ['listen', i], address: listen.address });
    });
  }
  if (isRecord(root.admin) && typeof root.admin.address === 'string') addresses.push({ path: ['admin'], address: root.admin.address });
  if (isRecord(root.gslb)) {
    for (const [name, block] of Object.entries(root.gslb)) {
      if (isRecord(block) && isRecord(block.dns) && typeof block.dns.listen === 'string') addresses.push({ path: ['gslb', name, 'dns', 'listen'], address: block.dns.listen });
    }
  }
  problems.push(...addressClashes(addresses));
  if (config !== undefined) problems.push(...acmeProblems(config.listen));
  problems.push(...backendTlsProblems(root.upstreams));
  if (config !== undefined) problems.push(...accelerationProblems(config.cache, config.routes));
  if (config !== undefined && config.state.redis === undefined) {
    for (const [name, store] of Object.entries(config.cache.stores)) {
      if (store.type === 'redis') problems.push({ path: ['cache', 'stores', name, 'type'], message: 'a redis store needs state.redis (docs/scaling.md)' });
    }
  }
  else {
    // The parts that are valid on their own; the rest has its problems reported already.
    const cache = cacheSchema.safeParse(root.cache);
    if (cache.success) {
      const parsed = routes.map((route) => {
        const result = routeSchema.safeParse(route);
        return result.success ? result.data : undefined;
      });
      problems.push(...accelerationProblems(cache.data, parsed));
    }
  }
  return problems;
}

/**
 * The source offset of the deepest node that exists along `path`, or of the last key itself when
 * `atKey` (a value may start on a later line than its key).
 */
function offsetOf(doc: Document, path: readonly PathKey[], atKey = false): number | undefined {
  if (atKey && path.length > 0) {
    const parent: unknown = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1), true);
    const last = path[path.length - 1];
    const pair = isMap(parent) ? parent.items.find((p) => isScalar(p.key) && p.key.value === last) : undefined;
    if (isNode(pair?.key) && pair.key.range) return pair.key.range[0];
  }
  for (let depth = path.length; depth >= 0; depth--) {
    const node: unknown = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    if (isNode(node) && node.range) return node.range[0];
  }
  return undefined;
}

/** Routes that name a gslb block, and regions that name an upstream, must find them. */
function gslbReferences(root: Record<string, unknown>, upstreams: readonly string[], routes: readonly unknown[]): Problem[] {
  const problems: Problem[] = [];
  const blocks = isRecord(root.gslb) ? root.gslb : {};
  const names = Object.keys(blocks);
  routes.forEach((route, i) => {
    if (!isRecord(route) || typeof route.gslb !== 'string') return;
    const block = blocks[route.gslb];
    if (block === undefined) problems.push({ path: ['routes', i, 'gslb'], message: unknownName('gslb block', route.gslb, names) });
    else if (isRecord(block) && block.mode === 'dns') {
      problems.push({ path: ['routes', i, 'gslb'], message: `gslb block "${route.gslb}" has mode: dns and answers DNS only; a route needs mode proxy or redirect` });
    }
  });
  for (const [name, block] of Object.entries(blocks)) {
    if (isRecord(block) && typeof block.database === 'string' && block.database !== '') {
      try {
        accessSync(block.database, fsConstants.R_OK);
      } catch (error: unknown) {
        problems.push({ path: ['gslb', name, 'database'], message: `cannot read ${block.database} (${errorCodeOrMessage(error)})` });
      }
    }
    if (!isRecord(block) || !isRecord(block.regions)) continue;
    for (const [region, value] of Object.entries(block.regions)) {
      if (!isRecord(value) || typeof value.upstream !== 'string' || upstreams.includes(value.upstream)) continue;
      problems.push({ path: ['gslb', name, 'regions', region, 'upstream'], message: unknownName('upstream', value.upstream, upstreams) });
    }
  }
  return problems;
}
