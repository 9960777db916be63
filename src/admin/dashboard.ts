/**
 * The live dashboard on the admin listener: one HTML page, one stylesheet and one ES module from
 * src/admin/dashboard/ (read once at start; nothing from the network, so it works offline), and
 * the live feed (live.ts) at /events. See docs/operations.md#dashboard.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { LiveFeed, type LiveSource } from './live.ts';

/** A file served as is. */
interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/**
 * The page runs only its own script and style, talks only to this listener, and may not be framed.
 * Styles set through the DOM (element.style) are allowed by CSP; style attributes in markup are not.
 */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Request paths and the files they serve. */
const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
};

export const DASHBOARD_ENDPOINTS = ['GET /', 'GET /dashboard', 'GET /events'];

export class Dashboard {
  readonly #assets = new Map<string, Asset>();
  readonly #feed: LiveFeed;

  constructor(source: LiveSource) {
    this.#feed = new LiveFeed(source);
    const dir = assetDirectory();
    // A file served under two paths (the page) is read and hashed once.
    const byFile = new Map<string, Asset>();
    for (const [path, { file, type }] of Object.entries(FILES)) {
      let asset = byFile.get(file);
      if (asset === undefined) {
        const body = readFileSync(new URL(file, dir));
        asset = { body, type, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"` };
        byFile.set(file, asset);
      }
      this.#assets.set(path, asset);
    }
  }

  /**
   * Answers a request for the page or its files and returns true, or returns false when `path` is
   * not one. They hold no data (everything comes from the API), so they need no token: a browser
   * cannot send one with a page load.
   */
  serveFile(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const asset = this.#assets.get(path);
    if (asset === undefined) return false;
    // Revalidated on every load (no-cache): an upgraded Gatehouse serves its new page at once, and
    // an unchanged one answers 304 without the body.
    const headers = { 'content-type': asset.type, 'cache-control': 'no-cache', etag: asset.etag, 'x-content-type-options': 'nosniff', ...PAGE_HEADERS };
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, headers).end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-length': asset.body.length });
    res.end(req.method === 'HEAD' ? undefined : asset.body);
    return true;
  }

  /** Takes a `GET /events` request as a live-feed watcher and returns true; false for any other request. */
  serveEvents(req: IncomingMessage, res: ServerResponse, path: string): boolean {
    if (req.method !== 'GET' || path !== '/events') return false;
    this.#feed.watch(res);
    return true;
  }

  close(): void {
    this.#feed.close();
  }
}

/** Beside this module in a checkout; a build (dist/admin/) copies the folder too, else the sources' is used. */
function assetDirectory(): URL {
  const beside = new URL('./dashboard/', import.meta.url);
  if (existsSync(new URL('index.html', beside))) return beside;
  return new URL('../../src/admin/dashboard/', import.meta.url);
}
