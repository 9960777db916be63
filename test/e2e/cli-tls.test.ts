/** The one-liner with TLS: `gatehouse proxy --from https://... --cert --key`, and `--to https://...` with `--backend-ca`. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { echo, startBackend, startHttpsBackend } from '../helpers/backend.ts';
import { createCa, tempDir, writePair } from '../helpers/certs.ts';
import { request, waitFor } from '../helpers/http.ts';
import { freePort, spawnCli, waitStarted } from '../helpers/process.ts';

/** A GET over TLS trusting `ca`; resolves with the status and body. */
async function getTls(url: string, ca: string, servername: string): Promise<{ status: number; body: string }> {
  const req = httpsRequest(url, { ca, servername, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  return { status: res.statusCode ?? 0, body };
}

async function files(t: TestContext) {
  const ca = await createCa('CLI CA');
  const dir = await tempDir(t);
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  return { ca, dir, caFile };
}

test('proxy --from https://ADDR --cert --key terminates TLS', async (t) => {
  const { ca, dir } = await files(t);
  const site = await writePair(dir, 'site', await ca.issue({ names: ['site.test'] }));
  const backend = await startBackend(t, echo('behind-tls'));
  const port = await freePort();
  const proc = spawnCli(t, ['proxy', '--from', `https://127.0.0.1:${port}`, '--cert', site.cert, '--key', site.key, '--to', backend.url, '--access-log', 'off']);
  await waitStarted(proc);
  const res = await getTls(`https://127.0.0.1:${port}/hello`, ca.cert, 'site.test');
  assert.equal(res.status, 200);
  const seen = JSON.parse(res.body) as { name: string; url: string; headers: Record<string, string> };
  assert.equal(seen.name, 'behind-tls');
  assert.equal(seen.url, '/hello');
  assert.equal(seen.headers['x-forwarded-proto'], 'https');
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0);
});

test('proxy --to https://... verifies the server: --backend-ca trusts a private CA; without it, 502', async (t) => {
  const { ca, caFile } = await files(t);
  const leaf = await ca.issue({ names: ['127.0.0.1'] });
  const backend = await startHttpsBackend(t, { cert: leaf.cert, key: leaf.key }, echo('private'));
  const trusted = await freePort();
  const proc = spawnCli(t, ['proxy', '--from', `127.0.0.1:${trusted}`, '--to', backend.url, '--backend-ca', caFile, '--access-log', 'off']);
  await waitStarted(proc);
  const ok = await request(`http://127.0.0.1:${trusted}/`);
  assert.equal(ok.status, 200);
  assert.equal(JSON.parse(ok.body).name, 'private');

  const untrusted = await freePort();
  const plain = spawnCli(t, ['proxy', '--from', `http://127.0.0.1:${untrusted}`, '--to', backend.url]);
  await waitStarted(plain);
  assert.equal((await request(`http://127.0.0.1:${untrusted}/`)).status, 502);
  // The access log (stdout, JSON) names the failure.
  await waitFor(() => plain.stdout.includes('"error":"'), 5000, 'the access log line');
  assert.match(plain.stdout, /"error":"TLS_CERT_INVALID"/);
  proc.child.kill('SIGTERM');
  plain.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0);
  assert.equal(await plain.exited, 0);
});

test('proxy TLS flags that do not fit together get one line of usage and exit 2; an unreadable CA file exits 1 naming it', async (t) => {
  const { dir, caFile } = await files(t);
  const cases: [string[], RegExp][] = [
    [['--from', 'https://127.0.0.1:0', '--to', 'http://127.0.0.1:1'], /an https:\/\/ --from needs --cert FILE and --key FILE/],
    [['--from', '127.0.0.1:0', '--cert', 'a.pem', '--key', 'a.key', '--to', 'http://127.0.0.1:1'], /--cert and --key need an https:\/\/ --from/],
    [['--from', 'ftp://127.0.0.1:0', '--to', 'http://127.0.0.1:1'], /--from takes host:port, http:\/\/host:port or https:\/\/host:port, not ftp:\/\//],
    [['--from', 'https://127.0.0.1:0/path', '--cert', 'a', '--key', 'b', '--to', 'http://127.0.0.1:1'], /without a path/],
    [['--from', '127.0.0.1:0', '--to', 'http://127.0.0.1:1', '--backend-ca', caFile], /--backend-ca applies to https:\/\/ servers/],
  ];
  for (const [args, message] of cases) {
    const proc = spawnCli(t, ['proxy', ...args]);
    assert.equal(await proc.exited, 2, args.join(' '));
    assert.match(proc.stderr, message);
    assert.match(proc.stderr, /Run "gatehouse proxy --help" for usage/);
  }
  const missing = join(dir, 'missing-ca.pem');
  const proc = spawnCli(t, ['proxy', '--from', '127.0.0.1:0', '--to', 'https://127.0.0.1:1', '--backend-ca', missing]);
  assert.equal(await proc.exited, 1);
  assert.match(proc.stderr, new RegExp(`${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read the CA certificate file \\(ENOENT\\)`));
});
