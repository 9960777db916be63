/** tls: internal — a local CA made once in the state directory, leaf certificates for the configured names, `gatehouse ca-path`. */
import assert from 'node:assert/strict';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import { connect } from 'node:tls';
import pino from 'pino';
import { configFromObject } from '../../src/config/load.ts';
import type { ConfigInput } from '../../src/config/schema.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { LocalCa } from '../../src/listeners/tls/local-ca.ts';
import { echo, startBackend } from '../helpers/backend.ts';
import { tempDir } from '../helpers/certs.ts';
import { spawnCli } from '../helpers/process.ts';
import { simpleProxyConfig } from '../helpers/proxy.ts';

function internalConfig(backendUrl: string, stateDir: string, names: string[]): ConfigInput {
  return {
    ...simpleProxyConfig([backendUrl]),
    listen: [{ address: '127.0.0.1:0', tls: { internal: { names } } }],
    access_log: { enabled: false },
    state_dir: stateDir,
  } as ConfigInput;
}

async function start(config: ConfigInput): Promise<Gatehouse> {
  return Gatehouse.start(configFromObject(config), { logger: pino({ level: 'silent' }) });
}

/** GET / over HTTPS trusting only `ca`; the status and the certificate the server sent. */
async function get(port: number, ca: string, servername: string | undefined): Promise<{ status: number; cert: X509Certificate }> {
  const req = request({ host: '127.0.0.1', port, path: '/', ca, agent: false, ...(servername === undefined ? {} : { servername, headers: { host: servername } }) });
  req.end();
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  const cert = (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate() as X509Certificate;
  res.resume();
  await once(res, 'end');
  return { status: res.statusCode ?? 0, cert };
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

test('tls internal: a client trusting only the root file gets a certificate for each name; files are owner-only', async (t) => {
  const backend = await startBackend(t, echo());
  const stateDir = join(await tempDir(t), 'state');
  const gatehouse = await start(internalConfig(backend.url, stateDir, ['app.local', 'localhost', '127.0.0.1']));
  t.after(() => gatehouse.stop(500));
  const port = gatehouse.addresses[0]?.port ?? 0;
  const root = await readFile(join(stateDir, 'ca', 'root.pem'), 'utf8');

  for (const name of ['app.local', 'localhost']) {
    const { status, cert } = await get(port, root, name);
    assert.equal(status, 200, `the request to ${name} is served`);
    assert.ok(cert.checkHost(name), `the certificate is for ${name}`);
  }
  // No SNI (an IP address): the default certificate, which holds the IP address; Node checks it.
  const byIp = await get(port, root, undefined);
  assert.equal(byIp.status, 200);
  assert.equal(byIp.cert.checkIP('127.0.0.1'), '127.0.0.1');

  // A client that does not trust the root refuses the certificate.
  const untrusted = connect({ host: '127.0.0.1', port, servername: 'app.local' });
  const [error] = (await once(untrusted, 'error')) as [Error & { code?: string }];
  assert.match(String(error.code), /UNABLE_TO_GET_ISSUER|SELF_SIGNED|UNABLE_TO_VERIFY/);

  assert.equal(await mode(stateDir), 0o700, 'the state directory');
  assert.equal(await mode(join(stateDir, 'ca')), 0o700);
  assert.equal(await mode(join(stateDir, 'ca', 'root.key')), 0o600, 'the root key');
  assert.equal(await mode(join(stateDir, 'ca', 'root.pem')), 0o600);
  assert.equal(await mode(join(stateDir, 'certificates', 'local')), 0o700);
  const files = await readdir(join(stateDir, 'certificates', 'local'));
  assert.equal(files.length, 2, `one certificate and its key: ${files.join(', ')}`);
  for (const file of files) {
    assert.match(file, /^app\.local\+2-[0-9a-f]{12}\.(pem|key)$/, 'named after the first name');
    assert.equal(await mode(join(stateDir, 'certificates', 'local', file)), 0o600, file);
  }
});

test('tls internal: the CA is made once and kept across restarts; the leaf is reused while fresh', async (t) => {
  const backend = await startBackend(t, echo());
  const stateDir = join(await tempDir(t), 'state');
  const config = internalConfig(backend.url, stateDir, ['app.local']);

  const first = await start(config);
  const root = await readFile(join(stateDir, 'ca', 'root.pem'), 'utf8');
  const served = (await get(first.addresses[0]?.port ?? 0, root, 'app.local')).cert.serialNumber;
  await first.stop(500);

  const second = await start(config);
  t.after(() => second.stop(500));
  assert.equal(await readFile(join(stateDir, 'ca', 'root.pem'), 'utf8'), root, 'the same root');
  const again = await get(second.addresses[0]?.port ?? 0, root, 'app.local');
  assert.equal(again.status, 200);
  assert.equal(again.cert.serialNumber, served, 'the stored leaf is served again');

  // A reload with another name: a new leaf from the same root.
  await second.reload(configFromObject(internalConfig(backend.url, stateDir, ['other.local'])));
  const other = await get(second.addresses[0]?.port ?? 0, root, 'other.local');
  assert.ok(other.cert.checkHost('other.local'));
  assert.equal(await readFile(join(stateDir, 'ca', 'root.pem'), 'utf8'), root);
});

test('gatehouse ca-path prints the root certificate file of the configured state directory, making the CA if needed', async (t) => {
  const dir = await tempDir(t);
  const stateDir = join(dir, 'state');
  const file = join(dir, 'gatehouse.yaml');
  await writeFile(file, `state_dir: ${stateDir}\nlisten:\n  - address: 127.0.0.1:0\n    tls: { internal: { names: [app.local] } }\n`);
  const proc = spawnCli(t, ['ca-path', file]);
  assert.equal(await proc.exited, 0, proc.stderr);
  assert.equal(proc.stdout, `${join(stateDir, 'ca', 'root.pem')}\n`);
  const root = new X509Certificate(await readFile(proc.stdout.trim()));
  assert.ok(root.ca, 'it is a CA certificate');
  assert.equal(await mode(join(stateDir, 'ca', 'root.key')), 0o600);

  // Run again: the same CA.
  const again = spawnCli(t, ['ca-path', '--config', file]);
  assert.equal(await again.exited, 0);
  assert.equal(new X509Certificate(await readFile(again.stdout.trim())).serialNumber, root.serialNumber);
});

test('tls internal: three openers making the CA at once (as processes starting together would) end up with one CA whose key matches', async (t) => {
  const stateDir = join(await tempDir(t), 'state');
  const cas = await Promise.all([LocalCa.open(stateDir), LocalCa.open(stateDir), LocalCa.open(stateDir)]);
  const root = new X509Certificate(await readFile(join(stateDir, 'ca', 'root.pem')));
  assert.ok(root.checkPrivateKey(createPrivateKey(await readFile(join(stateDir, 'ca', 'root.key')))), 'the key on disk is the root\'s');
  for (const ca of cas) {
    const leaf = await ca.issue(['app.local']);
    assert.ok(new X509Certificate(leaf.certPem).verify(root.publicKey), 'every opener signs with the root on disk');
  }
  assert.deepEqual(await readdir(stateDir), ['ca'], 'no staging folder is left');
});
