/**
 * Reads a YAML (or JSON) configuration and validates it. Every problem is reported as
 * `file:line:col path: what is wrong`, so that the user can go straight to it.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isNode, isScalar, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { accelerationProblems } from './acceleration-schema.ts';
import { configSchema, type Config, type ConfigInput } from './schema.ts';

type PathKey = string | number;

/** Reads, parses and validates the file; throws a ConfigError listing every problem. */
export async function loadConfigFile(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error: unknown) {
    throw new ConfigError(`${file}: cannot read the file: ${error instanceof Error ? error.message : String(error)}`);
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
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${where(e.pos[0])}: ${e.message.split('\n')[0]}`).join('\n'));
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) throw new ConfigError(`${file}: the file is empty`);
  const messages = validate(raw).map((p) => `${where(offsetOf(doc, p.path, p.atKey))} ${formatPath(p.path)}: ${p.message}`);
  if (messages.length > 0) throw new ConfigError(messages.join('\n'));
  return configSchema.parse(raw);
}

/** Validates a configuration object built in code (the `proxy` command, tests). */
export function configFromObject(input: ConfigInput, origin = '<inline>'): Config {
  const problems = validate(input);
  if (problems.length > 0) {
    throw new ConfigError(problems.map((p) => `${origin} ${formatPath(p.path)}: ${p.message}`).join('\n'));
  }
  return configSchema.parse(input);
}

interface Problem {
  readonly path: readonly PathKey[];
  readonly message: string;
  /** The key itself is wrong (an unknown field): point at it, not at its value. */
  readonly atKey?: boolean;
}

function validate(raw: unknown): Problem[] {
  const result = configSchema.safeParse(raw);
  if (!result.success) return result.error.issues.map(toProblem);
  return crossReferences(result.data);
}

function toProblem(issue: z.core.$ZodIssue): Problem {
  const path = issue.path.filter((k): k is PathKey => typeof k !== 'symbol');
  if (issue.code === 'unrecognized_keys') {
    return { path: [...path, issue.keys[0] ?? ''], message: `unknown field "${issue.keys.join('", "')}"`, atKey: true };
  }
  if (issue.code === 'invalid_key') {
    // A record key (a header name) failed its own check: say why, at the key.
    return { path, message: issue.issues[0]?.message ?? issue.message, atKey: true };
  }
  return { path, message: issue.message };
}

/** Checks that need the whole file: names that refer to other parts. */
function crossReferences(config: Config): Problem[] {
  const problems: Problem[] = [];
  config.routes.forEach((route, i) => {
    if (route.upstream !== undefined && !(route.upstream in config.upstreams)) {
      const known = Object.keys(config.upstreams);
      problems.push({
        path: ['routes', i, 'upstream'],
        message: `no upstream named "${route.upstream}"${known.length ? ` (known: ${known.join(', ')})` : ''}`,
      });
    }
  });
  problems.push(...accelerationProblems(config.cache, config.routes));
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

function formatPath(path: readonly PathKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}
