/**
 * The cache's admin endpoints: statistics per store, and purges by URL (every variant), by URL
 * prefix, by tag (Surrogate-Key / Cache-Tag) or of everything.
 */
import type { IncomingMessage } from 'node:http';
import type { PurgeSelector } from '../cache/compile.ts';
import type { AdminAnswer } from './admin.ts';

/** What the endpoints need: one proxy's caches (CacheSet), or every worker's (workers/primary.ts). */
export interface CacheAdmin {
  stats(): unknown;
  /** Resolves with how many entries went. */
  purge(selector: PurgeSelector): Promise<number>;
}

export const CACHE_ENDPOINTS = ['GET /cache', 'POST /cache/purge?url=URL | prefix=URL | tag=TAG | all=true'];

/** Answers a cache endpoint, or null when the request is not one. */
export function handleCache(req: IncomingMessage, path: string, query: string, caches: CacheAdmin): Promise<AdminAnswer> | null {
  if (req.method === 'GET' && path === '/cache') return Promise.resolve(caches.stats()).then((stores) => ({ status: 200, body: { stores } }));
  if (path !== '/cache/purge') return null;
  if (req.method !== 'POST') return Promise.resolve({ status: 405, body: { error: 'use POST' } });
  const selector = purgeSelector(new URLSearchParams(query));
  if (typeof selector === 'string') return Promise.resolve({ status: 400, body: { error: selector } });
  return caches.purge(selector).then((purged) => ({ status: 200, body: { purged } }));
}

/** The selector a purge names, or what is wrong with it. */
function purgeSelector(params: URLSearchParams): PurgeSelector | string {
  const given = ['url', 'prefix', 'tag', 'all'].filter((name) => params.has(name));
  if (given.length !== 1) return 'give exactly one of url, prefix, tag or all';
  const url = params.get('url');
  const prefix = params.get('prefix');
  const tag = params.get('tag');
  for (const value of [url, prefix]) {
    if (value === null) continue;
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) return `"${value}" is not an absolute http(s) URL`;
  }
  if (url !== null) return { url };
  if (prefix !== null) return { prefix };
  if (tag !== null) return tag === '' ? 'the tag is empty' : { tag };
  return params.get('all') === 'true' ? { all: true } : 'all must be true';
}
