/**
 * One normal form of the path for matching and forwarding: a rule that denies /admin cannot be
 * walked around by spelling /admin differently, and the backend receives the path the route saw.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { rawRequest } from '../helpers/http.ts';
import { proxyToEcho } from '../helpers/proxy.ts';

const SPELLINGS = ['/admin', '/%61dmin', '/%61%64%6d%69%6e', '/./admin', '//admin', '/public/../admin', '/public/%2e%2e/admin', '/%2e/admin', '/a/b/../../admin/', '///admin//x', '/admin/.', '/x/..%2F..%2Fadmin'];

async function send(port: number, path: string): Promise<{ status: number; body: string }> {
  const raw = await rawRequest(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
  return { status: Number(raw.slice(9, 12)), body: raw.slice(raw.indexOf('\r\n\r\n') + 4) };
}

test('every spelling of /admin meets the rule that guards /admin', async (t) => {
  const { backend, proxy } = await proxyToEcho(t, [
    { match: { path_prefix: '/admin' }, respond: { status: 403, body: 'no' } },
    { match: {}, upstream: 'app' },
  ]);
  for (const path of SPELLINGS) {
    const { status } = await send(proxy.port, path);
    // %2F is refused by default: a 400 is as good as a 403 here, never a 200.
    assert.ok(status === 403 || (status === 400 && path.includes('%2F')), `${path} → ${status}`);
  }
  assert.equal(backend.requests.length, 0);
});

test('with encoded_slashes: decode, %2F is a separator too; with keep it stays data', async (t) => {
  const routes = [
    { match: { path_prefix: '/admin' }, upstream: 'app', access: { deny: ['127.0.0.0/8'] } },
    { match: {}, upstream: 'app' },
  ];
  const { proxy: decode } = await proxyToEcho(t, routes, { protection: { paths: { encoded_slashes: 'decode' } } });
  assert.equal((await send(decode.port, '/x/..%2F..%2Fadmin')).status, 403);
  assert.equal((await send(decode.port, '/public%2F..%2Fadmin')).status, 403);
  const seen = JSON.parse((await send(decode.port, '/a%2Fb')).body) as { url: string };
  assert.equal(seen.url, '/a/b');

  // keep: %2F is part of a segment, so "..%2F" is no dot segment, and the backend gets it encoded.
  const { proxy: keep } = await proxyToEcho(t, routes, { protection: { paths: { encoded_slashes: 'keep' } } });
  const kept = async (path: string): Promise<{ status: number; url: string }> => {
    const { status, body } = await send(keep.port, path);
    return { status, url: status === 200 ? (JSON.parse(body) as { url: string }).url : '' };
  };
  assert.deepEqual(await kept('/public%2F..%2Fadmin'), { status: 200, url: '/public%2F..%2Fadmin' });
  assert.deepEqual(await kept('/a%2fb'), { status: 200, url: '/a%2Fb' });
  assert.equal((await kept('/public/../admin')).status, 403, 'real dot segments still resolve');
});

test('the backend receives the normalised path the route matched, the query untouched', async (t) => {
  const { proxy } = await proxyToEcho(t, [
    { match: { path_prefix: '/api' }, upstream: 'app', strip_prefix: '/api' },
    { match: {}, upstream: 'app' },
  ]);
  const url = async (path: string): Promise<string> => (JSON.parse((await send(proxy.port, path)).body) as { url: string }).url;
  assert.equal(await url('/%61pi/v1/../v2//users?q=%2e%2e/x'), '/v2/users?q=%2e%2e/x');
  assert.equal(await url('/static/%7euser/a%3fb'), '/static/~user/a%3Fb');
  assert.equal(await url('/.well-known/x'), '/.well-known/x');
  assert.equal(await url('/files/r%C3%A9sum%c3%a9.pdf'), '/files/r%C3%A9sum%C3%A9.pdf');
});
