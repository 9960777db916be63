/** Path normalisation, Host validation and absolute-form targets (pure functions). */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { normalizeTarget, type PathPolicy } from '../../src/routing/normalize-path.ts';
import { isValidHost, originForm } from '../../src/routing/request-target.ts';

const DEFAULT: PathPolicy = { mergeSlashes: true, encodedSlashes: 'reject', backslashes: 'reject' };

describe('normalizeTarget', () => {
  test('normal paths come back as they are', () => {
    for (const path of ['/', '/a', '/a/b/', '/a?b=../c//d', '/.well-known/x', '/a.b/c..d/.e', '/x?y#', '/a;p=1/b', '/~u/-_.']) {
      if (path.includes('#')) continue;
      assert.equal(normalizeTarget(path, DEFAULT), path);
    }
  });

  test('the spellings of /admin all become /admin', () => {
    for (const path of ['/%61dmin', '/./admin', '//admin', '/public/../admin', '/%2e/admin', '/public/%2E%2E/admin', '/a/b/../../admin', '/../admin', '/.%2e/admin', '///admin/.', '/admin/x/..']) {
      const normal = normalizeTarget(path, DEFAULT);
      assert.ok(normal === '/admin' || normal === '/admin/', `${path} → ${normal}`);
    }
  });

  test('RFC 3986 §5.2.4 examples and trailing segments', () => {
    assert.equal(normalizeTarget('/a/b/c/./../../g', DEFAULT), '/a/g');
    assert.equal(normalizeTarget('/mid/content=5/../6', DEFAULT), '/mid/6');
    assert.equal(normalizeTarget('/a/.', DEFAULT), '/a/');
    assert.equal(normalizeTarget('/a/..', DEFAULT), '/');
    assert.equal(normalizeTarget('/a/..?q=1', DEFAULT), '/?q=1');
    assert.equal(normalizeTarget('/..', DEFAULT), '/');
  });

  test('percent-encodings: unreserved decoded, others upper-cased, bad ones refused', () => {
    assert.equal(normalizeTarget('/%7euser/%41%2d', DEFAULT), '/~user/A-');
    assert.equal(normalizeTarget('/a%3fb%20c', DEFAULT), '/a%3Fb%20c');
    assert.equal(normalizeTarget('/%c3%a9', DEFAULT), '/%C3%A9');
    assert.equal(normalizeTarget('/%2561', DEFAULT), '/%2561', 'decoded once only');
    for (const bad of ['/%zz', '/%4', '/a%', '/%00', '/%0d%0a', '/%7F', '/a%1fb']) assert.equal(normalizeTarget(bad, DEFAULT), null, bad);
  });

  test('encoded slashes: reject, decode or keep', () => {
    assert.equal(normalizeTarget('/a%2Fb', DEFAULT), null);
    assert.equal(normalizeTarget('/public%2F..%2Fadmin', { ...DEFAULT, encodedSlashes: 'decode' }), '/admin');
    assert.equal(normalizeTarget('/a%2fb', { ...DEFAULT, encodedSlashes: 'keep' }), '/a%2Fb');
    assert.equal(normalizeTarget('/public%2F..%2Fadmin', { ...DEFAULT, encodedSlashes: 'keep' }), '/public%2F..%2Fadmin', 'one segment, not a dot segment');
  });

  test('backslashes: refused by default, kept on request', () => {
    assert.equal(normalizeTarget('/a\\b', DEFAULT), null);
    assert.equal(normalizeTarget('/a%5Cb', DEFAULT), null);
    assert.equal(normalizeTarget('/a\\b', { ...DEFAULT, backslashes: 'keep' }), '/a\\b');
    assert.equal(normalizeTarget('/a%5cb', { ...DEFAULT, backslashes: 'keep' }), '/a%5Cb');
  });

  test('merge_slashes: false keeps empty segments', () => {
    assert.equal(normalizeTarget('//a//b', { ...DEFAULT, mergeSlashes: false }), '//a//b');
    assert.equal(normalizeTarget('/a//../b', { ...DEFAULT, mergeSlashes: false }), '/a/b');
  });

  test('a fragment is refused, in the path or the query', () => {
    assert.equal(normalizeTarget('/a#b', DEFAULT), null);
    assert.equal(normalizeTarget('/a?b#c', DEFAULT), null);
    assert.equal(normalizeTarget('/%2e?b#c', DEFAULT), null);
  });

  test('the query is left alone', () => {
    assert.equal(normalizeTarget('/a/../b?x=%2e%2e/../%2F', DEFAULT), '/b?x=%2e%2e/../%2F');
  });

  test('the fast path is fast', () => {
    const paths = ['/api/v1/users/12345/orders?page=2&sort=desc', '/static/js/app.3f9a1c.js', '/', '/.well-known/acme-challenge/x'];
    const rounds = 200_000;
    const started = performance.now();
    let same = 0;
    for (let i = 0; i < rounds; i++) {
      const path = paths[i & 3] as string;
      if (normalizeTarget(path, DEFAULT) === path) same++;
    }
    const ns = ((performance.now() - started) * 1e6) / rounds;
    assert.equal(same, rounds);
    assert.ok(ns < 1000, `${ns.toFixed(0)} ns per path`);
  });
});

describe('isValidHost', () => {
  test('names, IPv4, IPv6 literals and ports', () => {
    for (const host of ['example.com', 'EXAMPLE.com:8080', '127.0.0.1:80', '[::1]', '[2001:db8::1]:443', 'a-b_c~d', '', 'xn--bcher-kva.example']) {
      assert.ok(isValidHost(host), host);
    }
  });
  test('anything else is refused', () => {
    for (const host of ['a b', 'a/b', 'a@b', 'a?b', 'a#b', 'a\\b', '[::1', '[zz]', 'a:b', 'a:123456', 'a:1:2', '"a"', 'a<b', 'é.com', '[::1]x']) {
      assert.ok(!isValidHost(host), host);
    }
  });
});

describe('originForm', () => {
  test('an absolute-form target naming the Host becomes origin-form', () => {
    assert.equal(originForm('http://a.test/x?y', 'a.test'), '/x?y');
    assert.equal(originForm('HTTP://A.test:80/x', 'a.test'), '/x');
    assert.equal(originForm('http://a.test', 'a.test:80'), '/');
    assert.equal(originForm('http://a.test?q', 'a.test'), '/?q');
    assert.equal(originForm('https://a.test:443/x', 'a.test'), '/x');
    assert.equal(originForm('http://[::1]:8080/x', '[::1]:8080'), '/x');
  });
  test('another authority, userinfo, another scheme or no Host: refused', () => {
    assert.equal(originForm('http://b.test/x', 'a.test'), null);
    assert.equal(originForm('http://a.test:8080/x', 'a.test'), null);
    assert.equal(originForm('http://u@a.test/x', 'a.test'), null);
    assert.equal(originForm('ftp://a.test/x', 'a.test'), null);
    assert.equal(originForm('http://a.test/x', undefined), null);
    assert.equal(originForm('http:///x', ''), null);
    assert.equal(originForm('a.test/x', 'a.test'), null);
  });
});
