/** The TLS configuration: certificate sources, names for the local CA and ACME, state_dir, with file:line:col errors. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load.ts';
import { LETS_ENCRYPT_DIRECTORY } from '../../src/config/tls-schema.ts';
import { defaultStateDir } from '../../src/core/state-dir.ts';
import { errorOf, yaml } from '../helpers/config.ts';

describe('tls: internal and acme', () => {
  test('internal and acme beside certificate files, with their defaults', () => {
    const config = parseConfigText(
      yaml(
        'state_dir: ./state',
        'listen:',
        '  - address: 127.0.0.1:8080',
        '  - address: 127.0.0.1:8443',
        '    tls:',
        '      internal: { names: [App.Local, "*.dev.local", 127.0.0.1, "::1"] }',
        '      acme: { names: [www.example.com] }',
      ),
      'gatehouse.yaml',
    );
    assert.equal(config.state_dir, join(process.cwd(), 'state'), 'relative to the working directory');
    assert.deepEqual(config.listen[1]?.tls, {
      certificates: [],
      internal: { names: ['app.local', '*.dev.local', '127.0.0.1', '::1'] },
      acme: { names: ['www.example.com'], directory: LETS_ENCRYPT_DIRECTORY },
      session_tickets: true,
      session_ticket_rotation: 12 * 3_600_000,
    });
  });

  test('state_dir defaults to $XDG_DATA_HOME/gatehouse, else ~/.local/share/gatehouse', () => {
    assert.equal(defaultStateDir({ XDG_DATA_HOME: '/data' }), '/data/gatehouse');
    assert.equal(defaultStateDir({ HOME: '/home/ann' }), '/home/ann/.local/share/gatehouse');
    assert.equal(defaultStateDir({ HOME: '' }), join(process.cwd(), '.gatehouse'));
  });

  test('a tls block without any certificate source', () => {
    assert.match(errorOf(yaml('listen:', '  - address: 127.0.0.1:8443', '    tls: {}')), /^gatehouse\.yaml:3:10 listen\[0\]\.tls: needs certificates, internal or acme$/m);
  });

  test('names the local CA cannot sign, and names ACME cannot validate over HTTP-01', () => {
    const message = errorOf(
      yaml(
        'listen:',
        '  - address: 127.0.0.1:8080',
        '  - address: 127.0.0.1:8443',
        '    tls:',
        '      internal: { names: [bad_name.local] }',
        '      acme:',
        '        email: not-an-address',
        '        names: ["*.example.com", 192.0.2.1]',
      ),
    );
    assert.match(message, /^gatehouse\.yaml:5:27 listen\[1\]\.tls\.internal\.names\[0\]: must be a DNS name \(app\.example\.com, \*\.example\.com\) or an IP address$/m);
    assert.match(message, /^gatehouse\.yaml:7:16 listen\[1\]\.tls\.acme\.email: must be an email address$/m);
    assert.match(message, /^gatehouse\.yaml:8:17 listen\[1\]\.tls\.acme\.names\[0\]: wildcard names need the DNS-01 challenge/m);
    assert.match(message, /^gatehouse\.yaml:8:34 listen\[1\]\.tls\.acme\.names\[1\]: must be a DNS name: ACME certificates for IP addresses are not supported$/m);
  });

  test('acme without a plain listener to answer HTTP-01 on', () => {
    const message = errorOf(yaml('listen:', '  - address: 127.0.0.1:8443', '    tls:', '      acme: { names: [www.example.com] }'));
    assert.match(message, /^gatehouse\.yaml:4:13 listen\[0\]\.tls\.acme: needs a plain \(non-TLS\) listener to answer HTTP-01 challenges on/m);
  });
});
