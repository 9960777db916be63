/**
 * Plain wording for zod's issues ("must be a string (got a number)" rather than "Invalid input:
 * expected string, received number"), used as the error map of the configuration parse. zod
 * consults it only for issues whose schema gave no message of its own, so hand-written messages
 * in the schema stay as they are.
 */
import type { z } from 'zod';
import { didYouMean } from './suggest.ts';

type RawIssue = z.core.$ZodRawIssue;

/**
 * The fields an object schema knows, by the `keys` array of its unknown-key issue: the finished
 * issue no longer carries the schema, and the loader needs them for "did you mean".
 */
const knownFields = new WeakMap<readonly string[], readonly string[]>();

/** The fields the object that raised an unknown-key issue accepts (empty when not known). */
export function fieldsKnownFor(keys: readonly string[]): readonly string[] {
  return knownFields.get(keys) ?? [];
}

/** The error map: a plain message, or undefined to leave zod's own. */
export function plainMessage(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${typeNoun(issue.expected)} (got ${describe(issue.input)})`;
    case 'invalid_value':
      return oneOf(issue.values, issue.input);
    case 'too_small':
      return bound('least', issue.origin, Number(issue.minimum), issue.inclusive ?? true, issue.exact ?? false);
    case 'too_big':
      return bound('most', issue.origin, Number(issue.maximum), issue.inclusive ?? true, issue.exact ?? false);
    case 'invalid_format':
      return format(issue);
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    case 'unrecognized_keys': {
      const shape: unknown = (issue.inst as { _zod?: { def?: { shape?: unknown } } } | undefined)?._zod?.def?.shape;
      if (typeof shape === 'object' && shape !== null) knownFields.set(issue.keys, Object.keys(shape));
      return 'unknown field';
    }
    case 'invalid_union':
      return union(issue.errors, issue.input);
    case 'invalid_key':
      return 'is not an accepted name';
    default:
      return undefined;
  }
}

function typeNoun(expected: string): string {
  switch (expected) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    case 'object':
    case 'record':
    case 'map':
      return 'a mapping (key: value)';
    case 'array':
    case 'tuple':
    case 'set':
      return 'a list';
    default:
      return `a ${expected}`;
  }
}

/** What a value is, in the words of a YAML author. */
function describe(value: unknown): string {
  if (value === null) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'a number' : `the number ${value}`;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return value.length <= 40 ? JSON.stringify(value) : 'a string';
  return `a ${typeof value}`;
}

function literal(value: unknown): string {
  return typeof value === 'bigint' ? String(value) : typeof value === 'string' ? value : JSON.stringify(value);
}

function oneOf(values: readonly unknown[], input: unknown): string {
  const names = values.map(literal);
  const expected = names.length === 1 ? `must be ${names[0]}` : `must be one of ${names.join(', ')}`;
  if (typeof input !== 'string') return input === undefined ? 'is required' : `${expected} (got ${describe(input)})`;
  const strings = values.filter((v): v is string => typeof v === 'string');
  return `${expected}${didYouMean(input, strings) || ` (got "${input}")`}`;
}

function bound(side: 'least' | 'most', origin: string, limit: number, inclusive: boolean, exact: boolean): string {
  const unit = origin === 'string' ? 'characters' : origin === 'array' || origin === 'set' ? 'items' : origin === 'map' ? 'entries' : undefined;
  if (unit === undefined) {
    if (inclusive) return `must be at ${side} ${limit}`;
    return side === 'least' ? `must be more than ${limit}` : `must be less than ${limit}`;
  }
  if (exact) return `must have exactly ${limit} ${unit}`;
  if (side === 'least' && inclusive && limit === 1) return 'must not be empty';
  const n = inclusive ? limit : side === 'least' ? limit + 1 : limit - 1;
  return `must have at ${side} ${n} ${n === 1 ? unit.replace(/s$/, '') : unit}`;
}

function format(issue: Extract<RawIssue, { code: 'invalid_format' }>): string {
  const detail = issue as { prefix?: string; suffix?: string; includes?: string; pattern?: string };
  switch (issue.format) {
    case 'starts_with':
      return `must start with "${detail.prefix ?? ''}"`;
    case 'ends_with':
      return `must end with "${detail.suffix ?? ''}"`;
    case 'includes':
      return `must contain "${detail.includes ?? ''}"`;
    case 'regex':
      return `must match ${detail.pattern ?? 'the expected pattern'}`;
    case 'url':
      return 'must be a URL';
    default:
      return `must be a valid ${issue.format}`;
  }
}

/**
 * No branch of a union took the value. When every branch refused it for its type (or literal),
 * say what it may be: "must be a number or a string (got true)". Otherwise zod has already kept
 * the issues of the one branch that went further, or several did: take the first one's message.
 */
function union(branches: readonly (readonly z.core.$ZodIssue[])[], input: unknown): string | undefined {
  const forms: string[] = [];
  for (const issues of branches) {
    for (const issue of issues) {
      if (issue.path.length > 0) return firstMessage(branches);
      if (issue.code === 'invalid_type') forms.push(...(issue.expected === 'boolean' ? ['true', 'false'] : [typeNoun(issue.expected)]));
      else if (issue.code === 'invalid_value') forms.push(...issue.values.map(literal));
      else return firstMessage(branches);
    }
  }
  const unique = [...new Set(forms)];
  if (unique.length === 0) return undefined;
  const list = unique.length === 1 ? unique[0] : `${unique.slice(0, -1).join(', ')} or ${unique[unique.length - 1]}`;
  return input === undefined ? 'is required' : `must be ${list} (got ${describe(input)})`;
}

function firstMessage(branches: readonly (readonly z.core.$ZodIssue[])[]): string | undefined {
  for (const issues of branches) {
    const deep = issues.find((i) => i.path.length > 0 || (i.code !== 'invalid_type' && i.code !== 'invalid_value'));
    if (deep !== undefined) return deep.path.length > 0 ? `${deep.path.join('.')}: ${deep.message}` : deep.message;
  }
  return undefined;
}
