/** Configuration errors: plain wording, "did you mean", clashing addresses, and every problem in one pass. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { addressesOverlap } from '../../src/config/addresses.ts';
import { parseHostPort } from '../../src/config/units.ts';
import { closest, didYouMean, editDistance } from '../../src/config/suggest.ts';
import { listenError } from '../../src/listeners/bind-error.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';
import { errorOf, yaml } from '../helpers/config.ts';

const LISTEN = 'listen: [{ address: ":0" }]';

describe('edit distance and suggestions', () => {
  test('Damerau-Levenshtein: insertions, deletions, substitutions and adjacent transpositions cost 1', () => {
    assert.equal(editDistance('lisen', 'listen'), 1);
    assert.equal(editDistance('bakend', 'backend'), 1);
    assert.equal(editDistance('bakcend', 'backend'), 1);
    assert.equal(editDistance('upstrem', 'upstream'), 1);
    assert.equal(editDistance('kitten', 'sitting'), 3);
    assert.equal(editDistance('', 'abc'), 3);
    assert.equal(editDistance('same', 'same'), 0);
  });

  test('only near names are suggested, ties together, case ignored', () => {
    assert.deepEqual(closest('lisen', ['listen', 'limits', 'log']), ['listen']);
    assert.deepEqual(closest('ap', ['app', 'api', 'web']), ['app', 'api']);
    assert.deepEqual(closest('Routes', ['routes']), ['routes']);
    assert.deepEqual(closest('frobnicate', ['listen', 'routes']), []);
    assert.deepEqual(closest('xy', ['ab']), [], 'short words get at most one edit');
    assert.equal(didYouMean('lisen', ['listen']), ' (did you mean "listen"?)');
    assert.equal(didYouMean('zzz', ['listen']), '');
  });
});

describe('plain wording', () => {
  test('a wrong type says what it must be and what it got', () => {
    assert.equal(errorOf(yaml('listen: [{ address: 8080 }]')), 'gatehouse.yaml:1:21 listen[0].address: must be a string (got a number)');
    assert.equal(errorOf(yaml(LISTEN, 'limits: 5')), 'gatehouse.yaml:2:9 limits: must be a mapping (key: value) (got a number)');
    assert.equal(errorOf(yaml(LISTEN, 'limits: { max_header_count: 1.5 }')), 'gatehouse.yaml:2:29 limits.max_header_count: must be a whole number (got the number 1.5)');
    assert.equal(errorOf(yaml(LISTEN, 'limits: { header_timeout: true }')), 'gatehouse.yaml:2:27 limits.header_timeout: must be a number or a string (got true)');
    assert.equal(errorOf(yaml('listen: [{ address: ":0", hsts: yes }]')), 'gatehouse.yaml:1:33 listen[0].hsts: must be false, true or a mapping (key: value) (got "yes")');
  });

  test('a missing field is required', () => {
    assert.equal(errorOf(yaml('log: { level: info }')), 'gatehouse.yaml:1:1 listen: is required');
    assert.equal(
      errorOf(yaml(LISTEN, 'routes: [{ respond: {} }]')),
      'gatehouse.yaml:2:21 routes[0].respond.status: is required',
    );
  });

  test('an enum lists its values, and suggests the near one', () => {
    assert.equal(
      errorOf(yaml(LISTEN, 'log: { level: loud }')),
      'gatehouse.yaml:2:15 log.level: must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
    );
    assert.equal(
      errorOf(yaml(LISTEN, 'upstreams: { a: { servers: [{ url: "http://127.0.0.1:1" }], balance: round_robbin } }')),
      'gatehouse.yaml:2:70 upstreams.a.balance: must be one of round_robin, least_conn, p2c, hash, random, first (did you mean "round_robin"?)',
    );
  });

  test('too small and too big', () => {
    assert.equal(errorOf(yaml(LISTEN, 'limits: { max_header_count: 0 }')), 'gatehouse.yaml:2:29 limits.max_header_count: must be at least 1');
    assert.equal(errorOf(yaml(LISTEN, 'limits: { max_header_count: 100000 }')), 'gatehouse.yaml:2:29 limits.max_header_count: must be at most 10000');
    assert.equal(errorOf(yaml(LISTEN, 'routes: [{ redirect: { to: "" } }]')), 'gatehouse.yaml:2:28 routes[0].redirect.to: must not be empty');
    assert.equal(errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200 }, match: { methods: [] } }]')), 'gatehouse.yaml:2:56 routes[0].match.methods: must not be empty');
  });

  test('a string format: a path must start with /', () => {
    assert.equal(errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200 }, match: { path: x } }]')), 'gatehouse.yaml:2:53 routes[0].match.path: must start with "/"');
  });

  test('an unknown field suggests the near known one, and the misspelt field is not also "required"', () => {
    assert.equal(errorOf(yaml('lisen: [{ address: ":0" }]')), 'gatehouse.yaml:1:1 lisen: unknown field "lisen" (did you mean "listen"?)');
    assert.equal(
      errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200 }, matc: {} }]')),
      'gatehouse.yaml:2:38 routes[0].matc: unknown field "matc" (did you mean "match"?)',
    );
    assert.equal(
      errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200, bodi: x, kind: y } }]')),
      [
        'gatehouse.yaml:2:36 routes[0].respond.bodi: unknown field "bodi" (did you mean "body"?)',
        'gatehouse.yaml:2:45 routes[0].respond.kind: unknown field "kind"',
      ].join('\n'),
    );
  });

  test('a bad regular expression says why', () => {
    assert.equal(
      errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200 }, match: { path_regex: "a(" } }]')),
      'gatehouse.yaml:2:59 routes[0].match.path_regex: is not a valid regular expression: Unterminated group',
    );
    assert.equal(
      errorOf(yaml(LISTEN, 'routes: [{ respond: { status: 200 }, match: { headers: { x-a: { regex: "[b" } } } }]')),
      'gatehouse.yaml:2:72 routes[0].match.headers.x-a.regex: is not a valid regular expression: Unterminated character class',
    );
  });

  test('names other parts refer to say which characters they may use', () => {
    const upstream = 'upstreams: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }';
    assert.equal(errorOf(yaml(LISTEN, 'upstreams: { "a b": { servers: [{ url: "http://127.0.0.1:1" }] } }')), 'gatehouse.yaml:2:14 upstreams.a b: upstream names use letters, digits, _ . -');
    assert.equal(errorOf(yaml(LISTEN, 'cache: { stores: { "x/y": { type: memory } } }')), 'gatehouse.yaml:2:20 cache.stores.x/y: store names use letters, digits, _ . -');
    assert.equal(errorOf(yaml(LISTEN, upstream, 'gslb: { "g!": { default_region: eu, regions: { eu: { countries: [DE], upstream: app } } } }')), 'gatehouse.yaml:3:9 gslb.g!: gslb names use letters, digits, _ . -');
    assert.equal(
      errorOf(yaml(LISTEN, upstream, 'gslb: { g: { default_region: eu, regions: { eu: { countries: [DE], upstream: app }, "e u": { countries: [FR], upstream: app } } } }')),
      'gatehouse.yaml:3:85 gslb.g.regions.e u: region names use letters, digits, _ . -',
    );
  });

  test('an unknown upstream or cache store suggests the near name, or lists the known ones', () => {
    const config = (name: string): string =>
      yaml(LISTEN, 'upstreams:', '  backend: { servers: [{ url: "http://127.0.0.1:1" }] }', 'routes:', `  - upstream: ${name}`);
    assert.equal(errorOf(config('bakend')), 'gatehouse.yaml:5:15 routes[0].upstream: no upstream named "bakend" (did you mean "backend"?)');
    assert.equal(errorOf(config('web')), 'gatehouse.yaml:5:15 routes[0].upstream: no upstream named "web" (known: backend)');
    assert.equal(errorOf(yaml(LISTEN, 'routes: [{ upstream: app }]')), 'gatehouse.yaml:2:22 routes[0].upstream: no upstream named "app" (none is defined)');
    assert.equal(
      errorOf(yaml(LISTEN, 'upstreams: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }', 'routes: [{ upstream: app, cache: { store: defualt } }]')),
      'gatehouse.yaml:3:43 routes[0].cache.store: no cache store named "defualt" (did you mean "default"?)',
    );
  });
});

describe('every problem in one pass, sorted by line, each once', () => {
  /** Schema problems and cross references, out of order in the schema's eyes. */
  const MANY_PROBLEMS = yaml(
    'listen:',
    '  - address: 127.0.0.1:8080',
    '  - address: 127.0.0.1:8080',
    'upstreams:',
    '  backend:',
    '    servers: []',
    'routes:',
    '  - upstream: bakend',
    '    match: { path_regex: "(" }',
    '  - upstream: backend',
    '    cache: { store: nope }',
    '    lisen: 1',
    'shutdown_timeout: forever',
  );

  test('schema problems and cross references together', () => {
    const message = errorOf(MANY_PROBLEMS);
    assert.deepEqual(message.split('\n'), [
      'gatehouse.yaml:3:14 listen[1].address: 127.0.0.1:8080 is already used by listen[0]; give each listener its own address or port',
      'gatehouse.yaml:6:14 upstreams.backend.servers: an upstream needs at least one server',
      'gatehouse.yaml:8:15 routes[0].upstream: no upstream named "bakend" (did you mean "backend"?)',
      'gatehouse.yaml:9:26 routes[0].match.path_regex: is not a valid regular expression: Unterminated group',
      'gatehouse.yaml:12:5 routes[1].lisen: unknown field "lisen"',
      'gatehouse.yaml:13:19 shutdown_timeout: "forever" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)',
    ]);
  });

  test('the problems list (the admin API\'s) holds each line of the message once, with its line and column', () => {
    const error = (() => {
      try {
        parseConfigText(MANY_PROBLEMS, 'gatehouse.yaml');
      } catch (e: unknown) {
        return e;
      }
      return undefined;
    })();
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(
      error.problems.map((p) => `gatehouse.yaml:${p.line}:${p.column} ${p.path}: ${p.message}`),
      error.message.split('\n'),
    );
  });

  test('a YAML syntax error is in the problems list too, with its line and column and no path', () => {
    assert.throws(
      () => parseConfigText(yaml('listen:', '  - address: 127.0.0.1:8080', ' bad: indent'), 'gatehouse.yaml'),
      (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.deepEqual(error.problems, [{ line: 3, column: 1, path: '', message: 'All mapping items must start at the same column' }]);
        assert.equal(error.message, 'gatehouse.yaml:3:1: All mapping items must start at the same column');
        return true;
      },
    );
  });

  test('a route valid on its own still has its cache store checked when another part is wrong', () => {
    const message = errorOf(
      yaml(
        'listen: [{ address: nope }]',
        'upstreams: { app: { servers: [{ url: "http://127.0.0.1:1" }] } }',
        'routes: [{ upstream: app, cache: { store: nope } }]',
      ),
    );
    assert.deepEqual(message.split('\n'), [
      'gatehouse.yaml:1:21 listen[0].address: must be "host:port", "[ipv6]:port" or ":port"',
      'gatehouse.yaml:3:43 routes[0].cache.store: no cache store named "nope" (known: default)',
    ]);
  });
});

describe('listen addresses that cannot be bound together', () => {
  const overlap = (a: string, b: string): boolean => addressesOverlap(parseHostPort(a)!, parseHostPort(b)!);

  test('as Linux binds them', () => {
    assert.equal(overlap('127.0.0.1:8080', '127.0.0.1:8080'), true);
    assert.equal(overlap('0.0.0.0:8080', '127.0.0.1:8080'), true);
    assert.equal(overlap(':8080', '127.0.0.1:8080'), true, '":port" is 0.0.0.0');
    assert.equal(overlap('[::]:8080', '127.0.0.1:8080'), true, ':: is dual-stack');
    assert.equal(overlap('[::]:8080', '0.0.0.0:8080'), true);
    assert.equal(overlap('[::]:8080', '[::1]:8080'), true);
    assert.equal(overlap('[0:0::1]:8080', '[::1]:8080'), true, 'IPv6 compared in canonical form');
    assert.equal(overlap('localhost:8080', 'LOCALHOST:8080'), true);
    assert.equal(overlap('localhost:8080', '[::]:8080'), true);
    assert.equal(overlap('0.0.0.0:8080', '[::1]:8080'), false, '0.0.0.0 takes IPv4 only');
    assert.equal(overlap('127.0.0.1:8080', '127.0.0.2:8080'), false);
    assert.equal(overlap('127.0.0.1:8080', '127.0.0.1:8081'), false);
    assert.equal(overlap('localhost:8080', '0.0.0.0:8080'), false, 'a name may resolve to IPv6: not refused');
    assert.equal(overlap('127.0.0.1:0', '127.0.0.1:0'), false, 'port 0 picks a free port each time');
  });

  test('reported at the later listener, naming the earlier one; the admin listener too', () => {
    const message = errorOf(
      yaml(
        'listen:',
        '  - address: 0.0.0.0:8080',
        '  - address: 127.0.0.1:8080',
        '  - address: 127.0.0.1:0',
        '  - address: 127.0.0.1:0',
        '  - address: "[::]:9090"',
        'admin:',
        '  address: 127.0.0.1:9090',
      ),
    );
    assert.deepEqual(message.split('\n'), [
      'gatehouse.yaml:3:14 listen[1].address: 127.0.0.1:8080 overlaps listen[0] (0.0.0.0:8080): "0.0.0.0" takes every IPv4 address on port 8080; use another port',
      'gatehouse.yaml:8:12 admin.address: 127.0.0.1:9090 overlaps listen[4] ([::]:9090): "::" takes every address, IPv4 and IPv6, on port 9090; use another port',
    ]);
  });
});

describe('a bind that fails says which listener and what to do', () => {
  const systemError = (code: string): Error => Object.assign(new Error(`listen ${code}: some system text`), { code });

  test('address in use, privileged port, address not on this machine, anything else', () => {
    assert.equal(
      listenError(systemError('EADDRINUSE'), '127.0.0.1:8080', 'listen[0]', 'gatehouse.yaml:2:14').message,
      'cannot listen on 127.0.0.1:8080 (listen[0] at gatehouse.yaml:2:14): another process is listening on 127.0.0.1:8080; stop it or choose another port',
    );
    assert.match(listenError(systemError('EACCES'), ':80', 'listen[1]', undefined).message, /^cannot listen on :80 \(listen\[1\]\): port 80 is privileged \(below 1024\)/);
    assert.match(listenError(systemError('EADDRNOTAVAIL'), '192.0.2.1:8080', 'admin', undefined).message, /192\.0\.2\.1 is not an address of this machine/);
    const other = listenError(systemError('EMFILE'), '127.0.0.1:8080', 'listen[0]', undefined);
    assert.equal(other.message, 'cannot listen on 127.0.0.1:8080 (listen[0]): listen EMFILE: some system text');
    assert.equal(other.code, 'EMFILE');
  });
});
