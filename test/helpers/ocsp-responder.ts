/**
 * A real OCSP responder (`openssl ocsp`) on a free loopback port, answering for the certificates
 * of a test CA from an index file this helper writes; stopped when the test ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { closedPort } from './backend.ts';
import { tempDir, writePair, type TestCa } from './certs.ts';
import { waitFor } from './http.ts';

export interface OcspResponder {
  /** http://127.0.0.1:PORT: the URL to put in certificates (`ocspUrl`) before it is started. */
  readonly url: string;
  /** Starts `openssl ocsp` (again, after stop()), answering for `certs` ('good' unless listed in `revoked`). */
  start(certs: readonly string[], revoked?: readonly string[]): Promise<void>;
  /** Stops the responder process. */
  stop(): Promise<void>;
}

/** openssl's index.txt date: YYMMDDHHMMSSZ. */
function indexDate(date: Date): string {
  return date.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, '$1$2$3$4$5$6Z');
}

/** A responder for `ca`, its port chosen now (openssl needs a fixed one) and its signer issued by the CA. */
export async function ocspResponder(t: TestContext, ca: TestCa, options: { nextUpdateDays?: number } = {}): Promise<OcspResponder> {
  const dir = await tempDir(t, 'gatehouse-ocsp-');
  const port = await closedPort();
  const signer = await writePair(dir, 'ocsp', await ca.issue({ names: ['OCSP Responder'], ocspSigner: true }));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, ca.cert);
  let child: ChildProcess | null = null;
  const stop = async (): Promise<void> => {
    const running = child;
    child = null;
    if (running === null || running.exitCode !== null || running.signalCode !== null) return;
    const exited = once(running, 'exit');
    running.kill('SIGKILL');
    await exited;
  };
  t.after(stop);
  return {
    url: `http://127.0.0.1:${port}`,
    stop,
    async start(certs, revoked = []) {
      const lines = [...certs.map((pem) => [pem, 'V'] as const), ...revoked.map((pem) => [pem, 'R'] as const)].map(([pem, status]) => {
        const cert = new X509Certificate(pem);
        const revokedAt = status === 'R' ? indexDate(new Date(Date.now() - 3_600_000)) : '';
        return [status, indexDate(new Date(cert.validTo)), revokedAt, cert.serialNumber.toUpperCase(), 'unknown', `/CN=${cert.subject.replace(/^CN=/, '')}`].join('\t');
      });
      const index = join(dir, 'index.txt');
      await writeFile(index, lines.map((l) => `${l}\n`).join(''));
      // Certificates of two key types for one name share a subject.
      await writeFile(`${index}.attr`, 'unique_subject = no\n');
      const args = ['ocsp', '-index', index, '-port', String(port), '-rsigner', signer.cert, '-rkey', signer.key, '-CA', caFile, '-ndays', String(options.nextUpdateDays ?? 1)];
      const proc = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      child = proc;
      let output = '';
      const collect = (chunk: Buffer): void => void (output += chunk.toString());
      proc.stdout?.on('data', collect);
      proc.stderr?.on('data', collect);
      await waitFor(() => output.includes('ACCEPT') || proc.exitCode !== null, 5000, 'openssl ocsp to listen');
      if (proc.exitCode !== null) throw new Error(`openssl ocsp exited: ${output}`);
    },
  };
}
