/**
 * rewriteUrl and rewriteCookieDomain: which absolute URLs and cookie domains name a backend.
 * Pure logic over a real Upstream (its pools connect lazily, so no socket is opened).
 */
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { configFromObject } from '../../src/config/load.ts';
import { Registry } from '../../src/core/registry.ts';
import { rewriteCookieDomain, rewriteUrl } from '../../src/upstream/rewrite.ts';
import { Upstream } from '../../src/upstream/upstream.ts';

const registry = new Registry();
after(() => registry.close(0));

function upstreamOf(...urls: string[]): Upstream {
  const config = configFromObject({ listen: [{ address: ':0' }], upstreams: { app: { servers: urls.map((url) => ({ url })) } } });
  const app = config.upstreams.app;
  assert.ok(app !== undefined);
  return new Upstream('app', app, registry);
}

describe('rewriteUrl', () => {
  const up = upstreamOf('http://10.0.0.5:3000', 'http://Backend.Internal', 'http://[fd00::1]:8080', 'http://tls-peer:443');
  const rewrite = (value: string, host = 'www.example.com'): string => rewriteUrl(value, up, 'https', host);

  test('a URL naming a server becomes the public scheme and host, keeping path, query and fragment', () => {
    assert.equal(rewrite('http://10.0.0.5:3000/a/b?c=1#d'), 'https://www.example.com/a/b?c=1#d');
    assert.equal(rewrite('http://10.0.0.5:3000'), 'https://www.example.com');
    assert.equal(rewrite('http://10.0.0.5:3000?x=1'), 'https://www.example.com?x=1');
    assert.equal(rewrite('http://[FD00::1]:8080/x', 'pub.example:8443'), 'https://pub.example:8443/x');
  });

  test('scheme and host name are compared case-insensitively', () => {
    assert.equal(rewrite('HTTP://backend.internal/x'), 'https://www.example.com/x');
  });

  test('the default port may be written or left out', () => {
    assert.equal(rewrite('http://backend.internal/x'), 'https://www.example.com/x');
    assert.equal(rewrite('http://backend.internal:80/x'), 'https://www.example.com/x');
    assert.equal(rewrite('https://tls-peer/x'), 'https://www.example.com/x');
    assert.equal(rewrite('https://tls-peer:443/x'), 'https://www.example.com/x');
  });

  test('other hosts, other ports, relative URLs and other schemes pass unchanged', () => {
    for (const value of [
      'http://10.0.0.5:3001/x',
      'http://10.0.0.5/x',
      'http://10.0.0.50:3000/x',
      'http://backend.internal:8080/x',
      'http://backend.internal.evil.test/x',
      'https://login.example.com/',
      '/relative?x=1',
      '//10.0.0.5:3000/x',
      'ftp://10.0.0.5:3000/x',
    ]) {
      assert.equal(rewrite(value), value);
    }
  });

  test('without a public host nothing is rewritten', () => {
    assert.equal(rewriteUrl('http://10.0.0.5:3000/x', up, 'https', undefined), 'http://10.0.0.5:3000/x');
  });
});

describe('rewriteCookieDomain', () => {
  const up = upstreamOf('http://10.0.0.5:3000', 'http://backend.internal:8080');

  test('a Domain naming a server host becomes the public host name, without its port', () => {
    assert.equal(rewriteCookieDomain('a=1; Domain=10.0.0.5; Path=/', up, 'www.example.com:8443'), 'a=1; Domain=www.example.com; Path=/');
    assert.equal(rewriteCookieDomain('a=1;domain=.Backend.Internal', up, 'www.example.com'), 'a=1;domain=www.example.com');
  });

  test('other domains and cookies without Domain pass unchanged', () => {
    for (const cookie of ['a=1; Domain=example.org', 'a=1; Domain=.10.0.0.50', 'a=1; Path=/; HttpOnly', 'domain=10.0.0.5']) {
      assert.equal(rewriteCookieDomain(cookie, up, 'www.example.com'), cookie);
    }
  });
});
