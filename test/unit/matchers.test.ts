/** compileMatch: route conditions as predicates over a RequestInfo (pure logic, no sockets). */
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { describe, test } from 'node:test';
import type { RouteConfig } from '../../src/config/schema.ts';
import { compileMatch } from '../../src/routing/matchers.ts';
import { checkRequest, type RequestPolicy } from '../../src/listeners/request-checks.ts';
import { RequestInfo } from '../../src/routing/request-info.ts';

type Match = RouteConfig['match'];

/** Does a request `method url` with these headers match? Host defaults to "example.com". */
function matches(match: Match, url: string, options: { method?: string; headers?: IncomingHttpHeaders } = {}): boolean {
  const headers: IncomingHttpHeaders = { host: 'example.com', ...options.headers };
  return compileMatch(match)(new RequestInfo(options.method ?? 'GET', url, headers));
}

const withHost = (host: string): { headers: IncomingHttpHeaders } => ({ headers: { host } });

describe('RequestInfo', () => {
  test('splits path and query, and lower-cases the host without its port', () => {
    const info = new RequestInfo('GET', '/a/b?x=1&y', { host: 'API.Example.com:8080' });
    assert.equal(info.path, '/a/b');
    assert.equal(info.rawQuery, 'x=1&y');
    assert.equal(info.host, 'api.example.com');
    assert.equal(info.query.get('x'), '1');
    assert.equal(info.query.get('y'), '');
  });

  test('keeps the brackets of an IPv6 host and is empty without Host', () => {
    assert.equal(new RequestInfo('GET', '/', { host: '[::1]:8080' }).host, '[::1]');
    assert.equal(new RequestInfo('GET', '/', {}).host, '');
    assert.equal(new RequestInfo('GET', '/', {}).rawQuery, '');
  });
});

describe('checkRequest: only origin-form targets with one Host line are routed', () => {
  const policy: RequestPolicy = {
    paths: { mergeSlashes: true, encodedSlashes: 'reject', backslashes: 'reject' },
    maxHeaderCount: 100,
    maxUrlLength: 8192,
  };
  const check = (url: string, rawHeaders: string[]): string | null => {
    const headers: IncomingHttpHeaders = {};
    for (let i = 0; i < rawHeaders.length; i += 2) headers[(rawHeaders[i] as string).toLowerCase()] ??= rawHeaders[i + 1];
    const req = { httpVersionMajor: 1, httpVersionMinor: 1, url, rawHeaders, headers };
    return checkRequest(req as unknown as IncomingMessage, policy);
  };
  test('accepts origin-form with one Host', () => {
    assert.equal(check('/x?y', ['Host', 'a', 'Accept', '*/*']), null);
    assert.equal(check('http://a/x', ['Host', 'a']), null, 'absolute-form naming the Host becomes origin-form');
  });
  test('refuses other target forms and a second Host line', () => {
    assert.equal(check('http://b/x', ['Host', 'a']), 'BAD_REQUEST');
    assert.equal(check('*', ['Host', 'a']), 'BAD_REQUEST');
    assert.equal(check('a:443', ['Host', 'a']), 'BAD_REQUEST', 'authority-form');
    assert.equal(check('/x', ['Host', 'a', 'HOST', 'b']), 'BAD_REQUEST');
    assert.equal(check('/x', ['Host', 'a', 'host', 'a']), 'BAD_REQUEST', 'even when both say the same');
  });
});

describe('compileMatch', () => {
  test('an empty match admits everything', () => {
    assert.equal(matches({}, '/anything?x=1', { method: 'DELETE' }), true);
  });

  test('host: exact, case-insensitive, port ignored, any of a list', () => {
    assert.equal(matches({ host: ['example.com'] }, '/'), true);
    assert.equal(matches({ host: ['Example.COM'] }, '/', withHost('EXAMPLE.com:81')), true);
    assert.equal(matches({ host: ['a.test', 'example.com'] }, '/'), true);
    assert.equal(matches({ host: ['example.com'] }, '/', withHost('www.example.com')), false);
    assert.equal(matches({ host: ['example.com'] }, '/', { headers: { host: undefined } }), false);
  });

  test('host: a leading wildcard matches names below, at any depth, not the bare name', () => {
    const wild: Match = { host: ['*.example.com'] };
    assert.equal(matches(wild, '/', withHost('a.example.com')), true);
    assert.equal(matches(wild, '/', withHost('a.b.example.com')), true);
    assert.equal(matches(wild, '/', withHost('a.example.com:8443')), true);
    assert.equal(matches(wild, '/', withHost('example.com')), false);
    assert.equal(matches(wild, '/', withHost('notexample.com')), false);
    assert.equal(matches(wild, '/', withHost('.example.com')), false, 'an empty label is not a name below');
    assert.equal(matches(wild, '/', withHost('a.example.com.evil')), false);
  });

  test('path: exact, case-sensitive, query ignored', () => {
    assert.equal(matches({ path: '/x' }, '/x'), true);
    assert.equal(matches({ path: '/x' }, '/x?y=1'), true);
    assert.equal(matches({ path: '/x' }, '/x/'), false);
    assert.equal(matches({ path: '/x' }, '/X'), false);
  });

  test('path_prefix: on segment boundaries, with or without a trailing slash', () => {
    for (const prefix of ['/api', '/api/']) {
      assert.equal(matches({ path_prefix: prefix }, '/api'), true, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/api/'), true, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/api/x/y'), true, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/api?x'), true, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/apix'), false, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/ap'), false, prefix);
      assert.equal(matches({ path_prefix: prefix }, '/v1/api'), false, prefix);
    }
    assert.equal(matches({ path_prefix: '/' }, '/whatever'), true);
    assert.equal(matches({ path_prefix: '/a/b' }, '/a/b/c'), true);
    assert.equal(matches({ path_prefix: '/a/b' }, '/a/bc'), false);
  });

  test('path_regex: tested against the path alone, unanchored unless written so', () => {
    assert.equal(matches({ path_regex: '^/u/\\d+$' }, '/u/12?x=1'), true);
    assert.equal(matches({ path_regex: '^/u/\\d+$' }, '/u/12/x'), false);
    assert.equal(matches({ path_regex: '\\.php$' }, '/a/index.php'), true);
    assert.equal(matches({ path_regex: 'x=1' }, '/a?x=1'), false, 'the query is not part of the path');
  });

  test('methods: listed ones only, GET also admits HEAD', () => {
    assert.equal(matches({ methods: ['GET'] }, '/', { method: 'GET' }), true);
    assert.equal(matches({ methods: ['GET'] }, '/', { method: 'HEAD' }), true);
    assert.equal(matches({ methods: ['GET'] }, '/', { method: 'POST' }), false);
    assert.equal(matches({ methods: ['POST'] }, '/', { method: 'HEAD' }), false);
    assert.equal(matches({ methods: ['HEAD'] }, '/', { method: 'GET' }), false);
  });

  test('headers: exact value, regex, present true and false; names are case-insensitive', () => {
    const h = (headers: IncomingHttpHeaders): { headers: IncomingHttpHeaders } => ({ headers });
    assert.equal(matches({ headers: { 'X-Env': 'prod' } }, '/', h({ 'x-env': 'prod' })), true);
    assert.equal(matches({ headers: { 'X-Env': 'prod' } }, '/', h({ 'x-env': 'Prod' })), false);
    assert.equal(matches({ headers: { 'X-Env': 'prod' } }, '/', h({})), false);
    assert.equal(matches({ headers: { accept: { regex: 'json' } } }, '/', h({ accept: 'application/json' })), true);
    assert.equal(matches({ headers: { accept: { regex: 'json' } } }, '/', h({})), false, 'a regex needs a value');
    assert.equal(matches({ headers: { authorization: { present: true } } }, '/', h({ authorization: '' })), true);
    assert.equal(matches({ headers: { authorization: { present: true } } }, '/', h({})), false);
    assert.equal(matches({ headers: { authorization: { present: false } } }, '/', h({})), true);
    assert.equal(matches({ headers: { authorization: { present: false } } }, '/', h({ authorization: 'x' })), false);
  });

  test('headers: a repeated header is matched on its joined value', () => {
    const info = new RequestInfo('GET', '/', { host: 'a', 'set-cookie': ['a=1', 'b=2'] });
    assert.equal(compileMatch({ headers: { 'set-cookie': 'a=1, b=2' } })(info), true);
    assert.equal(compileMatch({ headers: { 'set-cookie': { regex: '^b=2$' } } })(info), false);
  });

  test('query: exact (decoded), regex, present; the first value counts', () => {
    assert.equal(matches({ query: { v: '2' } }, '/?v=2'), true);
    assert.equal(matches({ query: { v: '2' } }, '/?v=20'), false);
    assert.equal(matches({ query: { v: '2' } }, '/'), false);
    assert.equal(matches({ query: { q: 'a b' } }, '/?q=a%20b'), true);
    assert.equal(matches({ query: { q: 'a b' } }, '/?q=a+b'), true);
    assert.equal(matches({ query: { v: '1' } }, '/?v=1&v=2'), true);
    assert.equal(matches({ query: { v: '2' } }, '/?v=1&v=2'), false);
    assert.equal(matches({ query: { id: { regex: '^\\d+$' } } }, '/?id=42'), true);
    assert.equal(matches({ query: { id: { regex: '^\\d+$' } } }, '/?id=4a'), false);
    assert.equal(matches({ query: { id: { regex: '.*' } } }, '/'), false, 'a regex needs the parameter');
    assert.equal(matches({ query: { debug: { present: true } } }, '/?debug'), true);
    assert.equal(matches({ query: { debug: { present: true } } }, '/?x=1'), false);
    assert.equal(matches({ query: { debug: { present: false } } }, '/'), true);
    assert.equal(matches({ query: { debug: { present: false } } }, '/?debug=1'), false);
    assert.equal(matches({ query: { empty: '' } }, '/?empty='), true);
  });

  test('every condition must hold', () => {
    const match: Match = { host: ['example.com'], path_prefix: '/api', methods: ['POST'], query: { v: '1' } };
    assert.equal(matches(match, '/api/x?v=1', { method: 'POST' }), true);
    assert.equal(matches(match, '/api/x?v=1', { method: 'GET' }), false);
    assert.equal(matches(match, '/api/x?v=2', { method: 'POST' }), false);
    assert.equal(matches(match, '/apix?v=1', { method: 'POST' }), false);
    assert.equal(matches(match, '/api/x?v=1', { method: 'POST', headers: { host: 'other.com' } }), false);
  });
});
