/** Route conditions compiled into predicates once per snapshot. */
import type { RouteConfig, ValueMatchConfig } from '../config/schema.ts';
import type { RequestInfo } from './request-info.ts';

export type Predicate = (info: RequestInfo) => boolean;

/** All of a route's conditions as one predicate; a route with none matches everything. */
export function compileMatch(match: RouteConfig['match']): Predicate {
  const checks: Predicate[] = [];
  if (match.host !== undefined) checks.push(hostMatcher(match.host));
  if (match.methods !== undefined) {
    const methods = new Set(match.methods);
    // RFC 9110 §9.3.2: HEAD is answered like GET.
    if (methods.has('GET')) methods.add('HEAD');
    checks.push((info) => methods.has(info.method));
  }
  if (match.path !== undefined) {
    const path = match.path;
    checks.push((info) => info.path === path);
  }
  if (match.path_prefix !== undefined) checks.push(prefixMatcher(match.path_prefix));
  if (match.path_regex !== undefined) {
    const re = new RegExp(match.path_regex);
    checks.push((info) => re.test(info.path));
  }
  for (const [name, expected] of Object.entries(match.headers ?? {})) {
    const lower = name.toLowerCase();
    const test = valueMatcher(expected);
    checks.push((info) => {
      const value = info.headers[lower];
      return test(Array.isArray(value) ? value.join(', ') : value);
    });
  }
  for (const [name, expected] of Object.entries(match.query ?? {})) {
    const test = valueMatcher(expected);
    checks.push((info) => test(info.rawQuery === '' ? undefined : (info.query.get(name) ?? undefined)));
  }
  if (checks.length === 0) return () => true;
  if (checks.length === 1) return checks[0] as Predicate;
  return (info) => {
    for (const check of checks) if (!check(info)) return false;
    return true;
  };
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
