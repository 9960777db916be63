/**
 * The primary cache key: the request's host, path and query (as configured), compiled once per
 * route. Request headers named in `key.headers` are not part of it: they select a variant, like
 * Vary does, so that purging a URL removes all of its variants.
 */
import type { Exchange } from '../core/exchange.ts';

export interface KeyOptions {
  /** Include the Host (lower case, with its port). */
  readonly host: boolean;
  /** Include the query string. */
  readonly query: boolean;
  /** Query parameters left out of the key (tracking parameters). */
  readonly ignoreQuery: readonly string[];
  /** Sort the query parameters, so that ?a=1&b=2 and ?b=2&a=1 share an entry. */
  readonly sortQuery: boolean;
}

export type KeyFunction = (ex: Exchange) => string;

export function compileKey(options: KeyOptions): KeyFunction {
  const query = queryNormalizer(options);
  if (options.host) {
    if (query === null) return (ex) => lowerHost(ex.req.headers.host) + (ex.req.url as string);
    return (ex) => lowerHost(ex.req.headers.host) + ex.info.path + query(ex.info.rawQuery);
  }
  if (query === null) return (ex) => ex.req.url as string;
  return (ex) => ex.info.path + query(ex.info.rawQuery);
}

/** The key of an absolute URL under these options (purge, invalidation); its host keeps the port as given. */
export function keyOfUrl(options: KeyOptions, url: URL): string {
  const query = queryNormalizer(options);
  const raw = url.search.startsWith('?') ? url.search.slice(1) : '';
  const tail = url.pathname + (query === null ? (raw === '' ? '' : `?${raw}`) : query(raw));
  return options.host ? url.host.toLowerCase() + tail : tail;
}

/** The key prefix for every URL starting with `url` (purge by prefix). */
export function prefixOfUrl(options: KeyOptions, url: URL): string {
  const raw = url.search.startsWith('?') ? url.search : '';
  const tail = url.pathname + raw;
  return options.host ? url.host.toLowerCase() + tail : tail;
}

function lowerHost(host: string | undefined): string {
  return host === undefined ? '' : host.toLowerCase();
}

/** Turns a raw query into the key's '?query' part; null when the raw query is used as is. */
function queryNormalizer(options: KeyOptions): ((raw: string) => string) | null {
  if (!options.query) return () => '';
  if (options.ignoreQuery.length === 0 && !options.sortQuery) return null;
  const ignored = options.ignoreQuery.length === 0 ? null : new Set(options.ignoreQuery);
  return (raw) => {
    if (raw === '') return '';
    let parts = raw.split('&').filter((part) => part !== '' && (ignored === null || !ignored.has(decodeName(part))));
    if (options.sortQuery) parts = parts.sort();
    return parts.length === 0 ? '' : `?${parts.join('&')}`;
  };
}

function decodeName(part: string): string {
  const eq = part.indexOf('=');
  const name = eq === -1 ? part : part.slice(0, eq);
  if (!name.includes('%') && !name.includes('+')) return name;
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}
