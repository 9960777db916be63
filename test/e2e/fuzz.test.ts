/**
 * Fuzzing the request parser path: thousands of random and mutated requests (seeded, so a failure
 * can be replayed with FUZZ_SEED). Gatehouse must never crash, never forward an ambiguous request
 * (a strict backend checks every request it receives), and always answer 200 (a request that is
 * still valid), 400, 408, 413, 414, 417 (an unknown Expect) or 431, or close the connection.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { rawFrom } from '../helpers/clients.ts';
import { request } from '../helpers/http.ts';
import { startProxy } from '../helpers/proxy.ts';

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const COUNT = Number(process.env.FUZZ_COUNT ?? 3000);
/** 417: node:http's own (RFC 9110 §10.1.1) answer to an Expect it does not know. */
const ALLOWED = new Set([200, 400, 408, 413, 414, 417, 431]);
/** Interim answers node:http gives before the request is judged (Expect: 100-continue). */
const INTERIM = new Set([100]);

/** mulberry32: small, seeded, good enough to pick mutations. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASES = [
  'GET /a/b?c=d HTTP/1.1\r\nHost: x\r\nUser-Agent: fuzz\r\n\r\n',
  'POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello',
  'POST /chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3;x=y\r\nabc\r\n0\r\n\r\n',
  'GET /static/app.js HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nCookie: a=b\r\n\r\n',
  'PUT /items/1 HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\nok',
  'DELETE /x HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\r\n\r\n',
];
const BYTES = ['\r', '\n', '\r\n', '\0', ' ', '\t', ':', ',', ';', '%', '/', '.', '\\', '#', '?', '\x7f', '\xff', '\x01', '"', '@', '0', 'a'];
const TARGET_PIECES = ['/', '..', '.', '%2e', '%2E%2e', '%2f', '%5c', '//', 'admin', '%00', '%', '%zz', '#', '?', 'a', '%61', ';', '\\', '%0d%0a'];
const TE = ['chunked', 'gzip, chunked', 'chunked, chunked', ' chunked', 'Chunked', 'identity', 'chunked;a=b', '', 'gzip'];
const VERSIONS = ['HTTP/1.0', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1 ', 'HTTP/11', 'http/1.1', ''];

function mutate(random: () => number): string {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  let req = pick(BASES);
  const headEnd = (): number => Math.max(0, req.indexOf('\r\n\r\n'));
  const mutations = 1 + Math.floor(random() * 3);
  for (let m = 0; m < mutations; m++) {
    const at = Math.floor(random() * req.length);
    switch (Math.floor(random() * 12)) {
      case 0:
        req = req.slice(0, at) + pick(BYTES) + req.slice(at);
        break;
      case 1:
        req = req.slice(0, at) + req.slice(at + 1 + Math.floor(random() * 4));
        break;
      case 2: {
        const lines = req.slice(0, headEnd()).split('\r\n');
        const line = pick(lines.slice(1));
        if (line !== undefined) req = req.replace('\r\n\r\n', `\r\n${line}\r\n\r\n`);
        break;
      }
      case 3:
        req = req.replace('\r\n', `\r\nContent-Length: ${pick(['0', '1', '5', '99', '-1', '1, 1', '+5', '0x5', ' 5'])}\r\n`);
        break;
      case 4:
        req = req.replace('\r\n', `\r\nTransfer-Encoding: ${pick(TE)}\r\n`);
        break;
      case 5: {
        let target = '';
        for (let i = 0, n = 1 + Math.floor(random() * 6); i < n; i++) target += pick(TARGET_PIECES);
        if (!target.startsWith('/') && random() < 0.8) target = `/${target}`;
        req = req.replace(/^(\S+) \S+/, (_, method: string) => `${method} ${target}`);
        break;
      }
      case 6:
        req = req.replace(/^(\S+) (\S+)/, (_, method: string, path: string) => `${method} ${pick(['http://x', 'http://evil', 'HTTP://X:80', 'https://x', 'http://u@x', 'ftp://x'])}${path}`);
        break;
      case 7:
        req = req.replace(/HTTP\/1\.[01]\r\n/, `${pick(VERSIONS)}\r\n`);
        break;
      case 8:
        req = req.replace('\r\n', pick(['\r\n X: folded\r\n', '\r\nX: a\r\n\tb\r\n', '\n', '\r\r\n']));
        break;
      case 9:
        req = req.replace(/\r\n\r\n([0-9a-f]+)/, (_, size: string) => `\r\n\r\n${pick(['zz', `${size} `, `0x${size}`, 'fffffffffffffffff', `-${size}`, `${size};\0`])}`);
        break;
      case 10: {
        const size = random();
        if (size < 0.33) req = req.replace('\r\n', `\r\nX-Big: ${'b'.repeat(5000)}\r\n`);
        else if (size < 0.66) req = req.replace('\r\n', `\r\n${'X-Many: 1\r\n'.repeat(150)}`);
        else req = req.replace(/^(\S+) \//, (_, method: string) => `${method} /${'u'.repeat(2000)}`);
        break;
      }
      default:
        req = req.replace('\r\n', `\r\n${pick(['Host: y', 'Host: a b', 'Host: [::1', 'Host: x@y', 'Upgrade: h2c\r\nConnection: Upgrade', 'Expect: 100-continue', 'Connection: keep-alive, close'])}\r\n`);
    }
  }
  return req;
}

/** What makes a forwarded request ambiguous; '' when it is clean. */
function ambiguity(req: IncomingMessage): string {
  const h = req.headers;
  if (h['content-length'] !== undefined && h['transfer-encoding'] !== undefined) return 'both Content-Length and Transfer-Encoding';
  if (h['transfer-encoding'] !== undefined && h['transfer-encoding'].toLowerCase() !== 'chunked') return `Transfer-Encoding: ${h['transfer-encoding']}`;
  if (req.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === 'host').length !== 1) return 'not one Host';
  const url = req.url ?? '';
  const path = url.split('?')[0] ?? '';
  if (!path.startsWith('/')) return `target ${url}`;
  if (/\/\/|\/\.\.?(\/|$)|%2e|%2f|%5c|\\|#|%00/i.test(path)) return `path not normal: ${path}`;
  return '';
}

test(`fuzz: ${COUNT} random and mutated requests (seed ${SEED})`, async (t) => {
  const problems: string[] = [];
  let clientErrors = 0;
  let forwarded = 0;
  const backend = createServer((req, res) => {
    forwarded++;
    const issue = ambiguity(req);
    if (issue !== '') problems.push(`forwarded an ambiguous request (${issue}): ${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => res.end('ok'));
    req.on('error', () => {});
  });
  let aborted = 0;
  backend.on('clientError', (error: Error, socket) => {
    socket.destroy();
    // A request cut short (its client left mid-body, so the upstream request was aborted) is
    // incomplete, and known to be: that is no ambiguity.
    if ((error as { code?: string }).code === 'HPE_INVALID_EOF_STATE') {
      aborted++;
      return;
    }
    clientErrors++;
    const packet = (error as { rawPacket?: Buffer }).rawPacket?.toString('latin1') ?? '';
    problems.push(`the backend could not parse what was forwarded (${(error as { code?: string }).code}): ${JSON.stringify(packet.slice(0, 300))}`);
  });
  backend.listen(0, '127.0.0.1');
  await once(backend, 'listening');
  t.after(() => {
    backend.closeAllConnections();
    backend.close();
  });
  const proxy = await startProxy(t, {
    upstreams: { app: { servers: [{ url: `http://127.0.0.1:${(backend.address() as AddressInfo).port}` }] } },
    routes: [{ match: {}, upstream: 'app' }],
    limits: { max_header_size: '4kb', max_url_length: '1kb', max_body_size: '64', header_timeout: '2s' },
  });
  const random = prng(SEED);
  const inputs = Array.from({ length: COUNT }, () => mutate(random));
  const statuses = new Map<number, number>();
  let closed = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const input = inputs[next++] as string;
      // What came back until the proxy closed, or after 400 ms of waiting.
      const raw = await rawFrom('127.0.0.1', proxy.port, Buffer.from(input, 'latin1'), 400);
      const answers = [...raw.matchAll(/^HTTP\/1\.1 (\d{3}) /gm)].map((m) => Number(m[1]));
      if (raw !== '' && !raw.startsWith('HTTP/1.1 ')) problems.push(`not an HTTP answer ${JSON.stringify(raw.slice(0, 80))} to ${JSON.stringify(input.slice(0, 200))}`);
      if (answers.length === 0) closed++;
      for (const status of answers) {
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (!ALLOWED.has(status) && !INTERIM.has(status)) problems.push(`answered ${status} to ${JSON.stringify(input.slice(0, 200))}`);
      }
    }
  };
  await Promise.all(Array.from({ length: 24 }, () => worker()));
  t.diagnostic(`statuses ${JSON.stringify(Object.fromEntries(statuses))}, closed ${closed}, forwarded ${forwarded}, aborted mid-body ${aborted}`);
  assert.deepEqual(problems.slice(0, 10), [], `seed ${SEED}`);
  assert.equal(clientErrors, 0);
  assert.ok((statuses.get(400) ?? 0) > COUNT / 10, 'most mutations are refused');
  assert.ok(forwarded > COUNT / 20, 'and some stay valid and are forwarded');
  // Still serving.
  assert.equal((await request(`${proxy.url}/after`)).status, 200);
});
