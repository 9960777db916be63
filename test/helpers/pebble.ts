/**
 * A real ACME server for tests: Let's Encrypt's `pebble`, with `pebble-challtestsrv` as its DNS
 * (every name resolves to 127.0.0.1 unless a test says otherwise), both on free loopback ports,
 * stopped when the test ends. Pebble's own HTTPS certificate is made at test time. The test is
 * skipped, saying why, only when the binaries are not installed (Debian: apt-get install pebble).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { closedPort } from './backend.ts';
import { createCa, tempDir, writePair } from './certs.ts';
import { waitFor } from './http.ts';

export interface Pebble {
  /** The ACME directory URL. */
  readonly directory: string;
  /** The CA file that signed pebble's own HTTPS certificate (for `acme.ca_file`). */
  readonly caFile: string;
  /** The port pebble validates HTTP-01 challenges on: bind a plain listener here. */
  readonly httpPort: number;
  /** The root that signs the certificates pebble issues (PEM); pebble makes a new one each run. */
  root(): Promise<string>;
  /** Makes `host` resolve to `address` (127.0.0.2, where nothing listens, makes its validation fail). */
  resolve(host: string, address: string): Promise<void>;
  /** Everything pebble printed, for failure messages. */
  output(): string;
}

function installed(binary: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${binary}`]).status === 0;
}

/** Starts pebble and its DNS; undefined (and the test skipped) when pebble is not installed. */
export async function startPebble(t: TestContext): Promise<Pebble | undefined> {
  const missing = ['pebble', 'pebble-challtestsrv'].filter((binary) => !installed(binary));
  if (missing.length > 0) {
    t.skip(`${missing.join(' and ')} not installed: apt-get install pebble (Debian) to run the ACME tests`);
    return undefined;
  }
  const dir = await tempDir(t, 'gatehouse-pebble-');
  const ca = await createCa('Pebble Test Listener CA');
  const pair = await writePair(dir, 'pebble', await ca.issue({ names: ['127.0.0.1', 'localhost'] }));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  const [port, managementPort, httpPort, tlsPort, dnsPort, dnsManagementPort] = (await freePorts(6)) as [number, number, number, number, number, number];
  const configFile = join(dir, 'pebble.json');
  await writeFile(
    configFile,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${port}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: pair.cert,
        privateKey: pair.key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  let log = '';
  const dns = run(t, 'pebble-challtestsrv', [
    '-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${dnsManagementPort}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '',
  ], (text) => (log += text));
  const pebble = run(t, 'pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`, '-strict=false'], (text) => (log += text), {
    // Validate at once, and never reject a good nonce (acme-client would retry, slowly).
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
  });
  const directory = `https://127.0.0.1:${port}/dir`;
  await waitFor(async () => (await get(directory, ca.cert).catch(() => null)) !== null || exited(pebble) || exited(dns), 15_000, 'pebble to start');
  if (exited(pebble) || exited(dns)) throw new Error(`pebble did not start:\n${log}`);
  return {
    directory,
    caFile,
    httpPort,
    root: () => get(`https://127.0.0.1:${managementPort}/roots/0`, ca.cert),
    async resolve(host, address) {
      const res = await fetch(`http://127.0.0.1:${dnsManagementPort}/add-a`, { method: 'POST', body: JSON.stringify({ host, addresses: [address] }) });
      if (!res.ok) throw new Error(`challtestsrv add-a: ${res.status} ${await res.text()}`);
    },
    output: () => log,
  };
}

function run(t: TestContext, binary: string, args: string[], sink: (text: string) => void, env: Record<string, string> = {}): ChildProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  child.stdout?.on('data', (chunk: Buffer) => sink(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => sink(chunk.toString()));
  t.after(async () => {
    if (exited(child)) return;
    child.kill('SIGTERM');
    await once(child, 'exit');
  });
  return child;
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Distinct loopback ports that were free a moment ago. */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await closedPort());
  return [...ports];
}

/** GET over HTTPS trusting `ca`; the body of a 200, else a rejection. */
async function get(url: string, ca: string): Promise<string> {
  const req = request(url, { ca, agent: false });
  req.end();
  const [res] = (await once(req, 'response')) as [import('node:http').IncomingMessage];
  let body = '';
  for await (const chunk of res) body += String(chunk);
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode}`);
  return body;
}
