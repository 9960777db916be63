import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deltaSeconds, parseCacheControl, qualifiedFields } from '../../src/cache/cache-control.ts';
import {
  currentAge,
  decideUse,
  entityTags,
  evaluateConditionals,
  explicitLifetime,
  heuristicLifetime,
  ifRangeMatches,
  initialAge,
  invalidates,
  isUnsafe,
  NO_REQUEST_DIRECTIVES,
  normalizeVaryValue,
  parseRange,
  relatedTargets,
  requestDirectives,
  staleIfErrorAllows,
  storagePlan,
  variantKey,
  varyNames,
  weakMatch,
  strongMatch,
  type PolicyOptions,
  type StoredFacts,
} from '../../src/cache/policy.ts';
import { storedFacts } from '../helpers/cache.ts';

const OPTIONS: PolicyOptions = { heuristicFraction: 0.1, heuristicMax: 86_400, staleWhileRevalidate: 0, staleIfError: 0 };
const NOW = Date.parse('2025-01-01T12:00:00Z');
const GET = { method: 'GET', directives: parseCacheControl(undefined), authorization: false };
const date = (ms: number): string => new Date(ms).toUTCString();

describe('Cache-Control parsing (RFC 9111 §5.2)', () => {
  test('names are case-insensitive, arguments may be quoted and contain commas', () => {
    const cc = parseCacheControl('Max-Age=60, private="set-cookie, x-user", no-transform');
    assert.equal(cc.get('max-age'), '60');
    assert.equal(cc.get('private'), 'set-cookie, x-user');
    assert.equal(cc.get('no-transform'), true);
    assert.deepEqual(qualifiedFields(cc, 'private'), ['set-cookie', 'x-user']);
  });
  test('the first occurrence of a directive wins; several header lines are one list', () => {
    const cc = parseCacheControl(['max-age=10', 'max-age=99, public']);
    assert.equal(deltaSeconds(cc, 'max-age'), 10);
    assert.equal(cc.get('public'), true);
  });
  test('an invalid delta-seconds is -1 (stale), a huge one is capped', () => {
    assert.equal(deltaSeconds(parseCacheControl('max-age=abc'), 'max-age'), -1);
    assert.equal(deltaSeconds(parseCacheControl('max-age=99999999999999'), 'max-age'), 2147483648);
    assert.equal(deltaSeconds(parseCacheControl(''), 'max-age'), undefined);
  });
});

describe('storagePlan (RFC 9111 §3)', () => {
  const plan = (headers: Record<string, string>, status = 200, request = GET) => storagePlan(request, status, headers, OPTIONS, NOW);

  test('explicit freshness makes a response storable', () => {
    const p = plan({ 'cache-control': 'max-age=60' });
    assert.equal(p.storable, true);
    assert.equal(p.storable && p.lifetime, 60);
  });
  test('no-store, private and Vary: * are not stored', () => {
    assert.deepEqual(plan({ 'cache-control': 'no-store, max-age=60' }), { storable: false, reason: 'no-store' });
    assert.deepEqual(plan({ 'cache-control': 'private, max-age=60' }), { storable: false, reason: 'private' });
    assert.deepEqual(plan({ 'cache-control': 'max-age=60', vary: 'Accept, *' }), { storable: false, reason: 'vary-star' });
  });
  test('the request no-store directive prevents storing', () => {
    const request = { ...GET, directives: parseCacheControl('no-store') };
    assert.deepEqual(plan({ 'cache-control': 'max-age=60' }, 200, request), { storable: false, reason: 'request-no-store' });
  });
  test('a qualified private stores the response without the named fields', () => {
    const p = plan({ 'cache-control': 'max-age=60, private="set-cookie"', 'set-cookie': 'a=1' });
    assert.equal(p.storable, true);
    assert.deepEqual(p.storable && p.omit, ['set-cookie']);
  });
  test('Set-Cookie prevents storing unless the origin excluded it', () => {
    assert.deepEqual(plan({ 'cache-control': 'public, max-age=60', 'set-cookie': 'a=1' }), { storable: false, reason: 'set-cookie' });
  });
  test('Authorization: stored only with public, s-maxage or must-revalidate (§3.5)', () => {
    const request = { ...GET, authorization: true };
    assert.deepEqual(plan({ 'cache-control': 'max-age=60' }, 200, request), { storable: false, reason: 'authorization' });
    assert.equal(plan({ 'cache-control': 'public, max-age=60' }, 200, request).storable, true);
    assert.equal(plan({ 'cache-control': 's-maxage=60' }, 200, request).storable, true);
    assert.equal(plan({ 'cache-control': 'max-age=60, must-revalidate' }, 200, request).storable, true);
  });
  test('206, 304 and non-GET are not stored; statuses not cacheable by default need explicit freshness', () => {
    assert.equal(plan({ 'cache-control': 'max-age=60' }, 206).storable, false);
    assert.equal(plan({ 'cache-control': 'max-age=60' }, 304).storable, false);
    assert.equal(plan({ 'cache-control': 'max-age=60' }, 200, { ...GET, method: 'POST' }).storable, false);
    assert.deepEqual(plan({ 'last-modified': date(NOW - 86_400_000) }, 302), { storable: false, reason: 'status' });
    assert.equal(plan({ 'cache-control': 'max-age=60' }, 302).storable, true);
    assert.equal(plan({ 'last-modified': date(NOW - 86_400_000) }, 404).storable, true);
  });
  test('must-understand lets a cache that knows the status ignore no-store', () => {
    assert.equal(plan({ 'cache-control': 'must-understand, no-store, max-age=60' }).storable, true);
    assert.equal(plan({ 'cache-control': 'must-understand, no-store, max-age=60' }, 299).storable, false);
  });
  test('a response that could never be reused without a full fetch is not stored', () => {
    assert.deepEqual(plan({}), { storable: false, reason: 'no-freshness' });
    assert.equal(plan({ etag: '"a"' }).storable, true, 'a validator allows revalidation');
    assert.equal(plan({ 'cache-control': 'max-age=0, stale-if-error=60' }).storable, true);
  });
  test('no-cache, must-revalidate, proxy-revalidate and s-maxage forbid stale answers', () => {
    const p1 = plan({ 'cache-control': 'max-age=60, no-cache' });
    assert.ok(p1.storable && p1.noCache && p1.noStale);
    for (const cc of ['max-age=60, must-revalidate', 'max-age=60, proxy-revalidate', 's-maxage=60']) {
      const p = plan({ 'cache-control': `${cc}, stale-while-revalidate=30, stale-if-error=30` });
      assert.ok(p.storable && p.noStale && p.staleWhileRevalidate === 0 && p.staleIfError === 0, cc);
    }
  });
  test('RFC 5861 directives, and the configured defaults when the response gives none', () => {
    const p = plan({ 'cache-control': 'max-age=60, stale-while-revalidate=30, stale-if-error=600' });
    assert.ok(p.storable && p.staleWhileRevalidate === 30 && p.staleIfError === 600);
    const q = storagePlan(GET, 200, { 'cache-control': 'max-age=60' }, { ...OPTIONS, staleIfError: 5, staleWhileRevalidate: 7 }, NOW);
    assert.ok(q.storable && q.staleWhileRevalidate === 7 && q.staleIfError === 5);
  });
});

describe('freshness lifetime and age (RFC 9111 §4.2)', () => {
  test('s-maxage wins over max-age, which wins over Expires', () => {
    const headers = { expires: date(NOW + 1000_000), date: date(NOW) };
    assert.equal(explicitLifetime(parseCacheControl('max-age=10, s-maxage=20'), headers, NOW), 20);
    assert.equal(explicitLifetime(parseCacheControl('max-age=10'), headers, NOW), 10);
    assert.equal(explicitLifetime(parseCacheControl(''), headers, NOW), 1000);
  });
  test('Expires is taken relative to Date; an invalid Expires means already stale', () => {
    assert.equal(explicitLifetime(parseCacheControl(''), { expires: date(NOW + 60_000), date: date(NOW - 60_000) }, NOW), 120);
    assert.equal(explicitLifetime(parseCacheControl(''), { expires: '0' }, NOW), 0);
    assert.equal(explicitLifetime(parseCacheControl(''), {}, NOW), undefined);
  });
  test('heuristic: a tenth of the time since Last-Modified, capped', () => {
    assert.equal(heuristicLifetime({ 'last-modified': date(NOW - 10_000_000), date: date(NOW) }, OPTIONS, NOW), 1000);
    assert.equal(heuristicLifetime({ 'last-modified': date(NOW - 100 * 86_400_000) }, OPTIONS, NOW), 86_400);
    assert.equal(heuristicLifetime({}, OPTIONS, NOW), 0);
    assert.equal(heuristicLifetime({ 'last-modified': date(NOW - 10_000_000) }, { ...OPTIONS, heuristicFraction: 0 }, NOW), 0);
  });
  test('initial age: the larger of the apparent age and Age plus the response delay', () => {
    assert.equal(initialAge({ age: '100' }, NOW - 2000, NOW), 102);
    assert.equal(initialAge({ date: date(NOW - 50_000) }, NOW, NOW), 50);
    assert.equal(initialAge({ date: date(NOW + 50_000) }, NOW, NOW), 0, 'a clock ahead gives no negative age');
  });
});

describe('decideUse (RFC 9111 §4, RFC 5861)', () => {
  const stored = (over: Partial<StoredFacts> = {}): StoredFacts => storedFacts(NOW, over);
  const dirs = (cc: string) => requestDirectives(parseCacheControl(cc));

  test('fresh until the lifetime is used up', () => {
    assert.equal(decideUse(stored(), NO_REQUEST_DIRECTIVES, NOW + 59_000).kind, 'fresh');
    assert.equal(decideUse(stored(), NO_REQUEST_DIRECTIVES, NOW + 61_000).kind, 'revalidate');
    assert.equal(Math.round(currentAge(stored({ initialAge: 5 }), NOW + 10_000)), 15);
  });
  test('no-cache responses are always revalidated', () => {
    assert.equal(decideUse(stored({ noCache: true, noStale: true }), NO_REQUEST_DIRECTIVES, NOW).kind, 'revalidate');
  });
  test('request directives: no-cache, max-age, min-fresh force revalidation of a fresh response', () => {
    for (const cc of ['no-cache', 'max-age=5', 'min-fresh=100']) {
      const use = decideUse(stored(), dirs(cc), NOW + 10_000);
      assert.deepEqual([use.kind, use.kind === 'revalidate' && use.requested], ['revalidate', true], cc);
    }
  });
  test('max-stale accepts a stale response, unless the response forbids it', () => {
    assert.equal(decideUse(stored(), dirs('max-stale=100'), NOW + 100_000).kind, 'stale-ok');
    assert.equal(decideUse(stored(), dirs('max-stale'), NOW + 10_000_000).kind, 'stale-ok');
    assert.equal(decideUse(stored(), dirs('max-stale=10'), NOW + 100_000).kind, 'revalidate');
    assert.equal(decideUse(stored({ noStale: true }), dirs('max-stale'), NOW + 100_000).kind, 'revalidate');
  });
  test('stale-while-revalidate within its window', () => {
    assert.equal(decideUse(stored({ staleWhileRevalidate: 30 }), NO_REQUEST_DIRECTIVES, NOW + 80_000).kind, 'stale-while-revalidate');
    assert.equal(decideUse(stored({ staleWhileRevalidate: 30 }), NO_REQUEST_DIRECTIVES, NOW + 100_000).kind, 'revalidate');
  });
  test('stale-if-error within the response allowance or the request one', () => {
    assert.equal(staleIfErrorAllows(stored({ staleIfError: 30 }), NO_REQUEST_DIRECTIVES, NOW + 80_000), true);
    assert.equal(staleIfErrorAllows(stored({ staleIfError: 30 }), NO_REQUEST_DIRECTIVES, NOW + 100_000), false);
    assert.equal(staleIfErrorAllows(stored(), dirs('stale-if-error=100'), NOW + 100_000), true);
    assert.equal(staleIfErrorAllows(stored({ staleIfError: 30, noStale: true }), NO_REQUEST_DIRECTIVES, NOW + 61_000), false);
  });
});

describe('Vary (RFC 9111 §4.1)', () => {
  test('names are lower case, sorted, unique; * never matches', () => {
    assert.deepEqual(varyNames('Accept-Encoding, accept-language'), ['accept-encoding', 'accept-language']);
    assert.deepEqual(varyNames(['Accept', 'accept']), ['accept']);
    assert.equal(varyNames('*'), null);
    assert.deepEqual(varyNames(undefined), []);
  });
  test('Accept-Encoding is normalised to the set of acceptable codings', () => {
    assert.equal(normalizeVaryValue('accept-encoding', 'gzip, deflate, br'), normalizeVaryValue('accept-encoding', 'br,gzip ,  deflate'));
    assert.equal(normalizeVaryValue('accept-encoding', 'gzip;q=1.0, br;q=0'), 'gzip');
    assert.notEqual(normalizeVaryValue('accept-encoding', ''), normalizeVaryValue('accept-encoding', undefined), 'absent is not empty');
  });
  test('other fields lose insignificant whitespace; Accept-Language its case', () => {
    assert.equal(normalizeVaryValue('accept-language', 'en-US,  fr;q=0.5'), normalizeVaryValue('accept-language', 'en-us, fr ; q=0.5'));
    assert.notEqual(normalizeVaryValue('x-custom', 'A'), normalizeVaryValue('x-custom', 'a'));
  });
  test('a variant key combines every named field', () => {
    const a = variantKey(['accept-language', 'x-tenant'], { 'accept-language': 'en', 'x-tenant': '1' });
    const b = variantKey(['accept-language', 'x-tenant'], { 'accept-language': 'en', 'x-tenant': '2' });
    assert.notEqual(a, b);
    assert.equal(variantKey([], { a: 'b' }), '');
  });
});

describe('conditional requests (RFC 9110 §13)', () => {
  const v = { etag: '"abc"', lastModified: NOW - 60_000, date: NOW };
  test('entity-tag lists and comparisons', () => {
    assert.deepEqual(entityTags('"a", W/"b" ,"c"'), ['"a"', 'W/"b"', '"c"']);
    assert.deepEqual(entityTags('*'), ['*']);
    assert.ok(weakMatch('W/"a"', '"a"'));
    assert.ok(!strongMatch('W/"a"', '"a"'));
    assert.ok(strongMatch('"a"', '"a"'));
  });
  test('If-None-Match uses weak comparison; * matches any', () => {
    assert.equal(evaluateConditionals({ 'if-none-match': 'W/"abc"' }, 200, v), 'not-modified');
    assert.equal(evaluateConditionals({ 'if-none-match': '"x", "abc"' }, 200, v), 'not-modified');
    assert.equal(evaluateConditionals({ 'if-none-match': '*' }, 200, v), 'not-modified');
    assert.equal(evaluateConditionals({ 'if-none-match': '"x"' }, 200, v), 'none');
  });
  test('If-None-Match takes precedence over If-Modified-Since', () => {
    assert.equal(evaluateConditionals({ 'if-none-match': '"x"', 'if-modified-since': date(NOW) }, 200, v), 'none');
    assert.equal(evaluateConditionals({ 'if-modified-since': date(NOW) }, 200, v), 'not-modified');
    assert.equal(evaluateConditionals({ 'if-modified-since': date(NOW - 120_000) }, 200, v), 'none');
  });
  test('If-Match (strong) and If-Unmodified-Since fail with 412', () => {
    assert.equal(evaluateConditionals({ 'if-match': '"abc"' }, 200, v), 'none');
    assert.equal(evaluateConditionals({ 'if-match': 'W/"abc"' }, 200, v), 'precondition-failed');
    assert.equal(evaluateConditionals({ 'if-unmodified-since': date(NOW - 120_000) }, 200, v), 'precondition-failed');
  });
  test('non-2xx responses ignore preconditions', () => {
    assert.equal(evaluateConditionals({ 'if-none-match': '*' }, 404, v), 'none');
  });
});

describe('ranges (RFC 9110 §14)', () => {
  test('single ranges, suffixes, open ends', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=50-1000', 100), { start: 50, end: 99 });
  });
  test('unsatisfiable ranges give 416; others are ignored', () => {
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-1,5-6', 100), null, 'several ranges: the whole response');
    assert.equal(parseRange('items=0-1', 100), null);
    assert.equal(parseRange('bytes=9-1', 100), null);
  });
  test('If-Range needs a strong match of the ETag or the exact date', () => {
    const v = { etag: '"abc"', lastModified: Date.parse(date(NOW)), date: NaN };
    assert.ok(ifRangeMatches('"abc"', v));
    assert.ok(!ifRangeMatches('W/"abc"', v));
    assert.ok(ifRangeMatches(date(NOW), v));
    assert.ok(!ifRangeMatches(date(NOW - 1000), v));
    assert.ok(ifRangeMatches(undefined, v));
  });
});

describe('invalidation (RFC 9111 §4.4)', () => {
  test('unsafe methods and non-error statuses', () => {
    assert.ok(isUnsafe('POST') && isUnsafe('PUT') && isUnsafe('DELETE') && isUnsafe('PATCH'));
    assert.ok(!isUnsafe('GET') && !isUnsafe('HEAD') && !isUnsafe('OPTIONS'));
    assert.ok(invalidates(201) && invalidates(303) && !invalidates(404) && !invalidates(500));
  });
  test('Location and Content-Location only when same-origin', () => {
    const targets = relatedTargets({ location: '/items/7?x=1', 'content-location': 'http://other.example/items' }, 'http://app.example');
    assert.deepEqual(targets, ['/items/7?x=1']);
    assert.deepEqual(relatedTargets({ location: 'http://app.example/a' }, 'http://app.example'), ['/a']);
  });
});
