/**
 * Response compression (gzip, brotli, zstd from node:zlib), as a route middleware that adds a
 * response filter. The filter decides at the response head:
 * - never compress what is already encoded, Cache-Control: no-transform, partial content (206,
 *   Content-Range), bodiless statuses, bodies declared smaller than `min_size`, content types not
 *   listed, or responses announcing trailers (they may carry a digest of the body);
 * - a response that could be compressed varies by Accept-Encoding whatever this client accepts,
 *   so it gets `Vary: Accept-Encoding` (caches downstream, and ours, keep one variant per
 *   encoding);
 * - when compressing: Content-Encoding set, Content-Length and Accept-Ranges removed (a small body
 *   compressed whole gets the Content-Length of the compressed bytes), a strong ETag made weak
 *   (the bytes differ from the identity representation's, RFC 9110 §8.8.1);
 * - optionally, a backend's gzip/br/zstd body is decoded for a client that does not accept it.
 * Bodies stream through the compressor (never held whole, except small ones of known length).
 */
import type { Transform } from 'node:stream';
import { parseCacheControl } from '../../cache/cache-control.ts';
import type { CompressConfig, Encoding } from '../../config/acceleration-schema.ts';
import { COMPRESS_DEFAULTS, routeSettings } from '../../config/acceleration-schema.ts';
import type { RouteConfig } from '../../config/schema.ts';
import type { Exchange } from '../../core/exchange.ts';
import type { Finish, Middleware, Next, ResponseFilter, ResponseHeaders, WholeBody } from '../pipeline.ts';
import { acceptsCoding, chooseEncoding } from './negotiate.ts';
import { createCompressor, createDecompressor, DECODABLE, WholeCompressor, type Levels } from './streams.ts';
import { compileTypes, type TypeMatcher } from './types.ts';

/** A route's compiled compression settings. */
export interface CompressSettings {
  readonly encodings: readonly Encoding[];
  readonly types: TypeMatcher;
  readonly minSize: number;
  readonly levels: Levels;
  readonly decompress: boolean;
}

export class CompressMiddleware implements Middleware, ResponseFilter {
  readonly name = 'compress';
  readonly settings: CompressSettings;

  /** Negotiation results by Accept-Encoding value: a few distinct values come back all the time. */
  readonly #chosen = new Map<string, Encoding | null>();
  /** Per encoding, the one-call compressor for small bodies of known length. */
  readonly #whole: Readonly<Record<Encoding, WholeCompressor>>;

  constructor(settings: CompressSettings) {
    this.settings = settings;
    const levels = settings.levels;
    this.#whole = { gzip: new WholeCompressor('gzip', levels), br: new WholeCompressor('br', levels), zstd: new WholeCompressor('zstd', levels) };
  }

  /** Below min_size compressing can make a body larger: a body of unknown length that would be compressed is seen that far first. */
  holdBack(ex: Exchange, status: number, headers: ResponseHeaders): number {
    if (status < 200 || status === 206 || headers['content-range'] !== undefined || headers['content-encoding'] !== undefined) return 0;
    if (!this.settings.types(headers['content-type']) || this.#choose(ex.req.headers['accept-encoding']) === null) return 0;
    return this.settings.minSize;
  }

  handle(ex: Exchange, next: Next, _finish: Finish): void {
    // The middleware is its own filter: stateless, nothing allocated per request.
    ex.addResponseFilter(this);
    next();
  }

  onResponseHead(ex: Exchange, status: number, headers: ResponseHeaders): Transform | WholeBody | null {
    if (status < 200 || status === 204 || status === 206 || status === 304) return null;
    if (headers['content-range'] !== undefined) return null;
    const encoded = headers['content-encoding'];
    if (encoded !== undefined && !(typeof encoded === 'string' && encoded.trim().toLowerCase() === 'identity')) {
      return this.settings.decompress ? this.#decode(ex, headers, encoded) : null;
    }
    if (!this.settings.types(headers['content-type'])) return null;
    const length = headers['content-length'];
    const size = typeof length === 'string' && DIGITS.test(length) ? Number(length) : -1;
    if (size >= 0 && size < this.settings.minSize) return null;
    if (headers['trailer'] !== undefined || noTransform(headers)) return null;
    addVary(headers);
    const encoding = this.#choose(ex.req.headers['accept-encoding']);
    if (encoding === null) return null;
    headers['content-encoding'] = encoding;
    delete headers['content-length'];
    delete headers['accept-ranges'];
    weakenEtag(headers);
    const whole = this.#whole[encoding];
    return size >= 0 && size <= whole.limit ? whole : createCompressor(encoding, this.settings.levels, size);
  }

  /** A backend's encoding the client does not accept: decode it (`decompress: true`). */
  #decode(ex: Exchange, headers: ResponseHeaders, encoded: string | string[]): Transform | null {
    if (Array.isArray(encoded)) return null;
    const coding = encoded.trim().toLowerCase();
    // Several codings ("gzip, br") or one Gatehouse cannot decode: leave it.
    if (!DECODABLE.has(coding)) return null;
    addVary(headers);
    if (acceptsCoding(ex.req.headers['accept-encoding'], coding)) return null;
    if (noTransform(headers)) return null;
    delete headers['content-encoding'];
    delete headers['content-length'];
    delete headers['accept-ranges'];
    weakenEtag(headers);
    return createDecompressor(coding);
  }

  #choose(acceptEncoding: string | undefined): Encoding | null {
    if (acceptEncoding === undefined) return null;
    let chosen = this.#chosen.get(acceptEncoding);
    if (chosen === undefined) {
      chosen = chooseEncoding(acceptEncoding, this.settings.encodings);
      if (this.#chosen.size >= 256) this.#chosen.clear();
      this.#chosen.set(acceptEncoding, chosen);
    }
    return chosen;
  }
}

/** A Content-Length value (made once: a regex literal in the function would be a new object per response). */
const DIGITS = /^\d+$/;

/** The directive's name anywhere in the field: without it, no directive can be no-transform. */
const NO_TRANSFORM = /no-transform/i;

/**
 * Cache-Control: no-transform forbids changing the content coding (RFC 9111 §5.2.2.6). The field
 * is parsed only when the name appears in it: most responses have a Cache-Control without it, and
 * parsing makes a Map per response.
 */
function noTransform(headers: ResponseHeaders): boolean {
  const cc = headers['cache-control'];
  if (cc === undefined || !NO_TRANSFORM.test(typeof cc === 'string' ? cc : cc.join(','))) return false;
  return parseCacheControl(cc).has('no-transform');
}

/** Adds Accept-Encoding to Vary unless it is there (or Vary is "*"). */
function addVary(headers: ResponseHeaders): void {
  const vary = headers['vary'];
  if (vary === undefined) {
    headers['vary'] = 'Accept-Encoding';
    return;
  }
  const text = Array.isArray(vary) ? vary.join(',') : vary;
  for (const part of text.split(',')) {
    const name = part.trim().toLowerCase();
    if (name === 'accept-encoding' || name === '*') return;
  }
  headers['vary'] = `${text}, Accept-Encoding`;
}

/** A strong ETag becomes weak: the encoded bytes are not the identity representation's. */
function weakenEtag(headers: ResponseHeaders): void {
  const etag = headers['etag'];
  if (typeof etag === 'string' && etag.startsWith('"')) headers['etag'] = `W/${etag}`;
}

/** The route's compression middleware (global settings overridden by the route's), or null when off. */
export function compileCompress(global: CompressConfig, route: RouteConfig): CompressMiddleware | null {
  // Routes that forward: to an upstream, or to a gslb block's region (a redirect has no body to compress).
  const settings = routeSettings(COMPRESS_DEFAULTS, global, route.compress, route.upstream !== undefined || route.gslb !== undefined);
  if (settings === null) return null;
  return new CompressMiddleware({
    encodings: settings.encodings,
    types: compileTypes(settings.types),
    minSize: settings.min_size,
    levels: settings.level,
    decompress: settings.decompress,
  });
}
