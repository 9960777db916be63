import type { IncomingHttpHeaders } from 'node:http';

/** What routes match on, read once per request. */
export class RequestInfo {
  readonly method: string;
  /** Lower-case host without port; '' when the request has no Host. */
  readonly host: string;
  /** The path without the query. */
  readonly path: string;
  /** The raw query without '?', '' when none. */
  readonly rawQuery: string;
  readonly headers: IncomingHttpHeaders;
  #query: URLSearchParams | undefined;

  constructor(method: string, url: string, headers: IncomingHttpHeaders) {
    this.method = method;
    this.headers = headers;
    const q = url.indexOf('?');
    this.path = q === -1 ? url : url.slice(0, q);
    this.rawQuery = q === -1 ? '' : url.slice(q + 1);
    this.host = hostWithoutPort(headers.host);
  }

  /** Parsed query, only when a route asks for it. */
  get query(): URLSearchParams {
    this.#query ??= new URLSearchParams(this.rawQuery);
    return this.#query;
  }
}

function hostWithoutPort(host: string | undefined): string {
  if (host === undefined) return '';
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1).toLowerCase();
  const colon = host.indexOf(':');
  return (colon === -1 ? host : host.slice(0, colon)).toLowerCase();
}

/**
 * RFC 9112 §3.2: only an origin-form target ("/path?query") with exactly one Host line is routed;
 * anything else is answered 400. An absolute-form target or a second Host would let the route
 * chosen here and what a backend reads disagree (a backend may take its path and host from
 * either), which would let a request slip past the routes that guard a path or a host.
 */
export function isRoutable(info: RequestInfo, rawHeaders: readonly string[]): boolean {
  if (info.path.charCodeAt(0) !== 0x2f) return false;
  let hosts = 0;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string;
    if (name.length === 4 && name.toLowerCase() === 'host' && ++hosts > 1) return false;
  }
  return true;
}
