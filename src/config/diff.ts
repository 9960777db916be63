/**
 * What a reload changes, for its log line: routes, upstreams and servers added, removed or
 * changed, and the other top-level settings that differ. Pure: two configurations in, names out.
 */
import { isDeepStrictEqual } from 'node:util';
import { routeName, type Config } from './schema.ts';

/** Names of what was added, removed and changed, in configuration order. */
export interface Changes {
  readonly added: string[];
  readonly removed: string[];
  readonly changed: string[];
}

/** A reload's changes, as logged. */
export interface ConfigDiff {
  /** By route name; an unnamed route is `route-N` after its place in the list, as in the access log. */
  readonly routes: Changes;
  /** By upstream name; `changed` means a setting other than its server list (see `servers`). */
  readonly upstreams: Changes;
  /** `UPSTREAM URL` per server; `changed` means its weight, backup or another field. */
  readonly servers: Changes;
  /** The other top-level fields that differ (`listen`, `access_log`, `cache`, ...). */
  readonly settings: string[];
}

/** Compares the configuration before a reload with the one after. */
export function diffConfigs(before: Config, after: Config): ConfigDiff {
  const { routes: _r1, upstreams: _u1, ...restBefore } = before;
  const { routes: _r2, upstreams: _u2, ...restAfter } = after;
  const keys = new Set([...Object.keys(restBefore), ...Object.keys(restAfter)]);
  const settings = [...keys].filter((key) => !isDeepStrictEqual(field(restBefore, key), field(restAfter, key)));
  return {
    routes: compare(routesByName(before), routesByName(after)),
    upstreams: compare(upstreamSettings(before), upstreamSettings(after)),
    servers: compare(serversByKey(before), serversByKey(after)),
    settings,
  };
}

function field(object: object, key: string): unknown {
  return (object as Record<string, unknown>)[key];
}

function compare(before: Map<string, unknown>, after: Map<string, unknown>): Changes {
  const changes: Changes = { added: [], removed: [], changed: [] };
  for (const [name, value] of after) {
    if (!before.has(name)) changes.added.push(name);
    else if (!isDeepStrictEqual(before.get(name), value)) changes.changed.push(name);
  }
  for (const name of before.keys()) if (!after.has(name)) changes.removed.push(name);
  return changes;
}

function routesByName(config: Config): Map<string, unknown> {
  return new Map(config.routes.map((route, i) => [routeName(route, i), route]));
}

function upstreamSettings(config: Config): Map<string, unknown> {
  return new Map(Object.entries(config.upstreams).map(([name, { servers: _servers, ...settings }]) => [name, settings]));
}

function serversByKey(config: Config): Map<string, unknown> {
  const servers = new Map<string, unknown>();
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    for (const server of upstream.servers) servers.set(`${name} ${server.url}`, server);
  }
  return servers;
}

/** One line per change ("route added: api", "server removed: app http://10.0.0.2:80"), for the admin API and its history. */
export function changeLines(diff: ConfigDiff): string[] {
  const lines: string[] = [];
  const kinds = [['route', diff.routes], ['upstream', diff.upstreams], ['server', diff.servers]] as const;
  for (const [kind, changes] of kinds) {
    for (const verb of ['added', 'removed', 'changed'] as const) for (const name of changes[verb]) lines.push(`${kind} ${verb}: ${name}`);
  }
  for (const setting of diff.settings) lines.push(`setting changed: ${setting}`);
  return lines;
}
