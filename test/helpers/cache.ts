/** Helpers for the cache and compression tests: responses as raw bytes, decoding, a scriptable origin. */
import { once } from 'node:events';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { TestContext } from 'node:test';
import zlib from 'node:zlib';
import type { RouteCacheInput } from '../../src/config/acceleration-schema.ts';
import type { StoredFacts } from '../../src/cache/policy.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { startBackend, type Backend } from './backend.ts';

export interface RawResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The body as received (still encoded). */
  readonly body: Buffer;
}

/** One request on its own connection; the body is kept as bytes. */
export async function fetchRaw(url: string, headers: OutgoingHttpHeaders = {}, method = 'GET', body?: string): Promise<RawResponse> {
  const req = httpRequest(url, { method, headers, agent: false });
  req.end(body);
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  const chunks: Buffer[] = [];
  for await (const chunk of res) chunks.push(chunk as Buffer);
  return { status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) };
}

/** The body decoded according to its Content-Encoding, as text. */
export function decoded(res: RawResponse): string {
  switch (res.headers['content-encoding']) {
    case undefined:
      return res.body.toString();
    case 'gzip':
      return zlib.gunzipSync(res.body).toString();
    case 'br':
      return zlib.brotliDecompressSync(res.body).toString();
    case 'zstd':
      return zlib.zstdDecompressSync(res.body).toString();
    default:
      throw new Error(`unexpected content-encoding ${String(res.headers['content-encoding'])}`);
  }
}

export function cacheStatus(res: RawResponse): string {
  return String(res.headers['cache-status'] ?? '');
}

export interface Origin extends Backend {
  /** Requests received per path (path with query). */
  count(path: string): number;
  /** The request headers the origin saw, in order. */
  readonly seen: IncomingMessage[];
}

/** An origin whose answer the test sets per request: `handler(req, res, n)` where n counts requests to that path from 1. */
export async function startOrigin(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<Origin> {
  const counts = new Map<string, number>();
  const seen: IncomingMessage[] = [];
  const backend = await startBackend(t, (req, res) => {
    const path = req.url ?? '/';
    const n = (counts.get(path) ?? 0) + 1;
    counts.set(path, n);
    seen.push(req);
    handler(req, res, n);
  });
  return Object.assign(backend, { count: (path: string) => counts.get(path) ?? 0, seen });
}

/** A config with one upstream "app" and one caching route (options merged into `cache`). */
export function cachingConfig(url: string, cache: RouteCacheInput = {}, extra: Partial<Omit<ConfigInput, 'listen'>> = {}): Omit<ConfigInput, 'listen'> {
  return {
    upstreams: { app: { servers: [{ url }] } },
    routes: [{ match: {}, upstream: 'app', cache: { enabled: true, ...cache } }],
    ...extra,
  };
}

/** What a store keeps of a plain response received at `responseTime`: fresh for 60 s, no directives; `over` replaces any of it. */
export function storedFacts(responseTime: number, over: Partial<StoredFacts> = {}): StoredFacts {
  return {
    responseTime,
    initialAge: 0,
    lifetime: 60,
    noCache: false,
    noStale: false,
    staleWhileRevalidate: 0,
    staleIfError: 0,
    ...over,
  };
}
