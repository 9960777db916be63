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
