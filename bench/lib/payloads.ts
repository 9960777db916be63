// What the backend serves; shared by the backend and the harness's checks.
export const SMALL_PATH = '/small';
export const LARGE_PATH = '/large';
export const SMALL_BYTES = 100;
export const LARGE_BYTES = 1024 * 1024;
/** Issue 21's middle size: 10 KiB, forwarded as it is (tail latency is compared with the thin proxy's). */
export const MEDIUM_PATH = '/medium';
export const MEDIUM_BYTES = 10 * 1024;
/** Cacheable (Cache-Control: public, max-age=3600), 100 bytes: the cache-hit scenario. */
export const CACHE_PATH = '/cache/small';
export const CACHE_BYTES = 100;
/** A compressible page (text/html, Cache-Control: no-store, so that every request is compressed): the gzip scenario. */
export const GZIP_PATH = '/gzip/page';
export const GZIP_BYTES = 16 * 1024;

/** The body of GET /small (text/plain): served by the node backend, and by the nginx backend of the multicore scenario. */
export function smallBody(): Buffer {
  const body = Buffer.alloc(SMALL_BYTES, 'x');
  body.write('gatehouse bench small response\n');
  return body;
}

/** Deterministic, compressible HTML-like text of `bytes` bytes (compresses about 5:1 at gzip level 5, like real pages). */
export function pageText(bytes: number): Buffer {
  const words = ['gateway', 'proxy', 'cache', 'stream', 'header', 'request', 'response', 'server', 'client', 'route', 'upstream', 'balance'];
  let text = '<!doctype html><html><body>';
  let seed = 7;
  while (text.length < bytes) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const word = words[seed % words.length] as string;
    text += seed % 9 === 0 ? `<p class="item-${seed % 97}">${word} ${seed % 100000}</p>\n` : `${word}-${seed % 1000} `;
  }
  return Buffer.from(text.slice(0, bytes));
}
