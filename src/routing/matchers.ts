/** Route conditions compiled into predicates once per snapshot. */
import type { RouteConfig, ValueMatchConfig } from '../config/schema.ts';
import type { RequestInfo } from './request-info.ts';

export type Predicate = (info: RequestInfo) => boolean;

/** One condition of a route, with words for the admin API's explain (never read on the hot path). */
export interface Condition {
  /** What it asks: `path is under /api`. */
  readonly what: string;
  /** What the request has instead: `the path is /x`. */
  actual(info: RequestInfo): string;
  readonly test: Predicate;
}

/** All of a route's conditions as one predicate; a route with none matches everything. */
export function compileMatch(match: RouteConfig['match']): Predicate {
  const checks = compileConditions(match).map((condition) => condition.test);
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0] as Predicate;
  return (info) => {
    for (const check of checks) if (!check(info)) return false;
    return true;
  };
}

/** A route's conditions one by one, in the order they are checked (the router's predicate is their conjunction). */
export function compileConditions(match: RouteConfig['match']): Condition[] {
  const conditions: Condition[] = [];
  const path = (info: RequestInfo): string => `the path is ${info.path}`;
  if (match.host !== undefined) {
    conditions.push({ what: `host is ${oneOf(match.host)}`, actual: (info) => (info.host === '' ? 'the request has no Host' : `the host is ${info.host}`), test: hostMatcher(match.host) });
  }
  if (match.methods !== undefined) {
    const methods = new Set(match.methods);
    // RFC 9110 §9.3.2: HEAD is answered like GET.
    if (methods.has('GET')) methods.add('HEAD');
    conditions.push({ what: `method is ${oneOf([...methods])}`, actual: (info) => `the method is ${info.method}`, test: (info) => methods.has(info.method) });
  }
  if (match.path !== undefined) {
    const exact = match.path;
    conditions.push({ what: `path is ${exact}`, actual: path, test: (info) => info.path === exact });
  }
  if (match.path_prefix !== undefined) conditions.push({ what: `path is under ${match.path_prefix}`, actual: path, test: prefixMatcher(match.path_prefix) });
  if (match.path_regex !== undefined) {
    const re = new RegExp(match.path_regex);
    conditions.push({ what: `path matches /${match.path_regex}/`, actual: path, test: (info) => re.test(info.path) });
  }
  for (const [name, expected] of Object.entries(match.headers ?? {})) {
    const lower = name.toLowerCase();
    const test = valueMatcher(expected);
    const value = (info: RequestInfo): string | undefined => {
      const raw = info.headers[lower];
      return Array.isArray(raw) ? raw.join(', ') : raw;
    };
    // The test reads the header itself, as it did before explain needed words: one call less per request.
    const check: Predicate = (info) => {
      const raw = info.headers[lower];
      return test(Array.isArray(raw) ? raw.join(', ') : raw);
    };
    conditions.push({ what: `header ${lower} ${expectation(expected)}`, actual: (info) => described(`header ${lower}`, value(info)), test: check });
  }
  for (const [name, expected] of Object.entries(match.query ?? {})) {
    const test = valueMatcher(expected);
    const value = (info: RequestInfo): string | undefined => (info.rawQuery === '' ? undefined : (info.query.get(name) ?? undefined));
    conditions.push({ what: `query parameter ${name} ${expectation(expected)}`, actual: (info) => described(`query parameter ${name}`, value(info)), test: (info) => test(info.rawQuery === '' ? undefined : (info.query.get(name) ?? undefined)) });
  }
  return conditions;
}

function oneOf(values: readonly string[]): string {
  return values.length === 1 ? (values[0] as string) : `one of ${values.join(', ')}`;
}

function expectation(expected: ValueMatchConfig): string {
  if (typeof expected === 'string') return `is "${expected}"`;
  if ('regex' in expected) return `matches /${expected.regex}/`;
  return expected.present ? 'is present' : 'is absent';
}

function described(what: string, value: string | undefined): string {
  return value === undefined ? `the ${what} is absent` : `the ${what} is "${value}"`;
}

/** Exact names, and "*.example.com" for any name below example.com (not example.com itself). */
function hostMatcher(hosts: readonly string[]): Predicate {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const host of hosts) {
    const lower = host.toLowerCase();
    if (lower.startsWith('*.')) suffixes.push(lower.slice(1));
    else exact.add(lower);
  }
  return (info) => {
    if (exact.has(info.host)) return true;
    for (const suffix of suffixes) if (info.host.endsWith(suffix) && info.host.length > suffix.length) return true;
    return false;
  };
}

/** "/api" matches "/api", "/api/" and "/api/x" but not "/apix". */
function prefixMatcher(prefix: string): Predicate {
  if (prefix === '/') return () => true;
  const bare = prefix.endsWith('/') ? prefix.slice(0, -1) : prefix;
  return (info) => info.path.startsWith(bare) && (info.path.length === bare.length || info.path[bare.length] === '/');
}

function valueMatcher(expected: ValueMatchConfig): (value: string | undefined) => boolean {
  if (typeof expected === 'string') return (value) => value === expected;
  if ('regex' in expected) {
    const re = new RegExp(expected.regex);
    return (value) => value !== undefined && re.test(value);
  }
  const present = expected.present;
  return (value) => (value !== undefined) === present;
}
