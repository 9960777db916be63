/**
 * Request smuggling and malformed input, through raw sockets: what node:http's parser (llhttp)
 * refuses and what Gatehouse adds, each answered 400 (or 413/414/431) with the connection closed
 * and nothing reaching the backend; absolute-form targets; and the same rules for responses.
 */
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { echo, startBackend, startRawBackend } from '../helpers/backend.ts';
import { rawRequest } from '../helpers/http.ts';
import { simpleProxyConfig, startProxy } from '../helpers/proxy.ts';

const C = 'Connection: close\r\n';

/** Requests that must be refused, by who refuses them. */
const REFUSED: Record<string, string> = {
  // llhttp (strict mode) refuses these by itself:
  'Content-Length and Transfer-Encoding': `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
  'two different Content-Lengths': `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab`,
  'two equal Content-Lengths': `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na`,
  'a Content-Length list': `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 1\r\n\r\na`,
  'a signed Content-Length': `POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na`,
  'Transfer-Encoding: chunked, gzip': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'Transfer-Encoding: gzip': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nabc`,
  'Transfer-Encoding twice': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'Transfer-Encoding: xchunked': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'a space before the colon': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'an invalid header name': `GET / HTTP/1.1\r\nHost: x\r\nX(y): 1\r\n\r\n`,
  'NUL in a header value': `GET / HTTP/1.1\r\nHost: x\r\nX: a\u0000b\r\n\r\n`,
  'CR in a header value': `GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n`,
  'a bare LF in a header value': `GET / HTTP/1.1\r\nHost: x\r\nX: a\nY: b\r\n\r\n`,
  'obsolete line folding': `GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n`,
  'a bad chunk size': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\na\r\n0\r\n\r\n`,
  'a 0x chunk size': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x1\r\na\r\n0\r\n\r\n`,
  'an overflowing chunk size': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\na\r\n0\r\n\r\n`,
  'chunk data longer than its size': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc\r\n0\r\n\r\n`,
  'NUL in the target': `GET /a\u0000b HTTP/1.1\r\nHost: x\r\n\r\n`,
  'CR in the target': `GET /a\rb HTTP/1.1\r\nHost: x\r\n\r\n`,
  'LF in the target': `GET /a\nb HTTP/1.1\r\nHost: x\r\n\r\n`,
  'no Host in HTTP/1.1': `GET / HTTP/1.1\r\n\r\n`,
  // Gatehouse refuses these, which llhttp lets through:
  'Transfer-Encoding: gzip, chunked': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'Transfer-Encoding: identity, chunked': `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'Transfer-Encoding in HTTP/1.0': `POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\r\n`,
  'an absolute-form target naming another host': `GET http://evil.test/ HTTP/1.1\r\nHost: x\r\n\r\n`,
  'an absolute-form target with userinfo': `GET http://u@x/ HTTP/1.1\r\nHost: x\r\n\r\n`,
  'two Host lines': `GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n`,
  'an invalid Host': `GET / HTTP/1.1\r\nHost: x y/z@w\r\n\r\n`,
  'a fragment in the target': `GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n`,
  'a backslash in the target': `GET /a\\..\\admin HTTP/1.1\r\nHost: x\r\n\r\n`,
  'an encoded NUL in the path': `GET /a%00b HTTP/1.1\r\nHost: x\r\n\r\n`,
  'an encoded CR LF in the path': `GET /a%0d%0aSet-Cookie:x HTTP/1.1\r\nHost: x\r\n\r\n`,
  'a bad percent sequence': `GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n`,
  'an encoded slash (encoded_slashes: reject)': `GET /a%2fb HTTP/1.1\r\nHost: x\r\n\r\n`,
  'HTTP/2.0 on an HTTP/1 request line': `GET / HTTP/2.0\r\nHost: x\r\n\r\n`,
  'HTTP/0.9': `GET /\r\n\r\n`,
};

test('malformed or ambiguous requests are answered 400 and the connection closed; nothing reaches the backend', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  for (const [name, data] of Object.entries(REFUSED)) {
    // A valid request pipelined after the bad one must not be answered either.
    const raw = await rawRequest(proxy.port, `${data}GET /after HTTP/1.1\r\nHost: x\r\n${C}\r\n`);
    assert.match(raw, /^HTTP\/1\.1 400 /, name);
    assert.equal(raw.match(/HTTP\/1\.1 /g)?.length, 1, `${name}: one answer, then the connection is closed`);
  }
  assert.equal(backend.requests.length, 0);
  const counted = (proxy.gatehouse.status() as { protection: { rejected_requests: number } }).protection.rejected_requests;
  assert.ok(counted >= 13, `Gatehouse's own refusals are counted (${counted})`);
});

test('an h2c upgrade (curl --http2) is served as the HTTP/1.1 request it also is, and the upgrade fields stay here (RFC 9113 §3.1)', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const raw = await rawRequest(
    proxy.port,
    `GET /h2c HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n${C}\r\n`,
  );
  assert.match(raw, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(raw.slice(raw.indexOf('{'))) as { url: string; headers: Record<string, string> };
  assert.equal(seen.url, '/h2c');
  assert.equal(seen.headers.upgrade, undefined);
  assert.equal(seen.headers['http2-settings'], undefined);
});

test('what is forwarded is normalised: chunked bodies re-framed, one Host, an origin-form target', async (t) => {
  const backend = await startBackend(t, echo());
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  const chunked = await rawRequest(proxy.port, `POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n${C}\r\n3;ext=1\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n`);
  assert.match(chunked, /^HTTP\/1\.1 200 /);
  const seen = JSON.parse(chunked.slice(chunked.indexOf('{'))) as { body: string; headers: Record<string, string> };
  assert.equal(seen.body, 'abc');
  assert.ok(seen.headers['content-length'] === undefined || seen.headers['transfer-encoding'] === undefined);
  const absolute = await rawRequest(proxy.port, `GET HTTP://X:80/a/./b/../c?q=1 HTTP/1.1\r\nHost: x\r\n${C}\r\n`);
  assert.match(absolute, /^HTTP\/1\.1 200 /);
  const forwarded = JSON.parse(absolute.slice(absolute.indexOf('{'))) as { url: string; rawHeaders: string[] };
  assert.equal(forwarded.url, '/a/c?q=1', 'absolute-form becomes origin-form, normalised');
  assert.equal(forwarded.rawHeaders.filter((h) => h.toLowerCase() === 'host').length, 1);
});

/** Backend answers, raw, and what the client must get. */
const RESPONSES: [string, string, RegExp][] = [
  ['Content-Length and Transfer-Encoding', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', /^HTTP\/1\.1 502 /],
  ['two Content-Lengths', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['a bad Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['Transfer-Encoding: gzip, chunked', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n', /^HTTP\/1\.1 502 /],
  ['Transfer-Encoding: gzip', 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nokok', /^HTTP\/1\.1 502 /],
  ['a header split by a bare LF (response splitting)', 'HTTP/1.1 200 OK\r\nX: a\nSet-Cookie: evil=1\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['CR in a header value', 'HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['NUL in a header value', 'HTTP/1.1 200 OK\r\nX: a\u0000b\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['obsolete line folding', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['a bad status line', 'HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 502 /],
  ['a valid answer', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok', /^HTTP\/1\.1 200 OK\r\n(?:.*\r\n)*\r\nok$/],
];

test('what backends send back obeys the same rules: bad framing or header injection → 502', async (t) => {
  let reply = '';
  const backend = await startRawBackend(t, (socket: Socket) => socket.once('data', () => socket.end(reply)));
  const proxy = await startProxy(t, simpleProxyConfig([backend.url]));
  for (const [name, answer, expected] of RESPONSES) {
    reply = answer;
    const raw = await rawRequest(proxy.port, `GET / HTTP/1.1\r\nHost: x\r\n${C}\r\n`);
    assert.match(raw, expected, name);
    assert.doesNotMatch(raw, /evil/, `${name}: nothing injected`);
  }
});
