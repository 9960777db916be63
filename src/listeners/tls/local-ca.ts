/**
 * The local CA of `tls: { internal: ... }`: a root certificate and key made once in the state
 * directory (ca/root.pem, ca/root.key) and kept across restarts, so that a developer trusts it
 * once (`gatehouse ca-path` prints where it is). It signs short-lived leaf certificates for the
 * configured names, ECDSA P-256, made with @peculiar/x509 on node's WebCrypto.
 */
import { webcrypto, X509Certificate as NodeX509 } from 'node:crypto';
import { isIP } from 'node:net';
import { rm, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { ensurePrivateDir, readIfExists, temporaryName, writePrivateFile } from '../../core/state-dir.ts';

x509.cryptoProvider.set(webcrypto as Crypto);

const DAY = 86_400_000;
/** The root lives long: trusting it again is a chore (Caddy's lives 10 years too). */
const ROOT_LIFETIME_MS = 3650 * DAY;
/** Leaves are short-lived and renewed at two thirds of their life. */
export const LEAF_LIFETIME_MS = 7 * DAY;
/** Backdated a little: clocks of clients on the same network disagree by minutes. */
const BACKDATE_MS = 3_600_000;

const KEY_ALGORITHM: EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams;

/** A certificate (chain, leaf first) and its PKCS#8 key, both PEM. */
export interface PemPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The root's file names inside the state directory. */
export function rootPaths(stateDir: string): { cert: string; key: string } {
  return { cert: join(stateDir, 'ca', 'root.pem'), key: join(stateDir, 'ca', 'root.key') };
}

export class LocalCa {
  /** The root certificate's file: the one to trust. */
  readonly rootFile: string;
  readonly #cert: x509.X509Certificate;
  readonly #keys: CryptoKeyPair;

  private constructor(rootFile: string, cert: x509.X509Certificate, keys: CryptoKeyPair) {
    this.rootFile = rootFile;
    this.#cert = cert;
    this.#keys = keys;
  }

  /** The CA of `stateDir`: read from its files, or made (once) when there are none. */
  static async open(stateDir: string): Promise<LocalCa> {
    await ensurePrivateDir(stateDir);
    const paths = rootPaths(stateDir);
    const existing = await LocalCa.#read(paths);
    if (existing !== undefined) return existing;
    const keys = await generateKeys();
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serialNumber(),
      name: `CN=Gatehouse Local CA ${new Date(now).toISOString().slice(0, 10)}, O=Gatehouse`,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(now + ROOT_LIFETIME_MS),
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        // A root that may sign leaves only (path length 0).
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    // Both files are written in a folder of their own, renamed into place in one step: of two
    // processes starting at once, one CA wins whole and the other process uses it.
    const staging = temporaryName(join(stateDir, 'ca'));
    const key = await keyPem(keys.privateKey);
    await writePrivateFile(join(staging, 'root.key'), key);
    await writePrivateFile(join(staging, 'root.pem'), cert.toString('pem') + '\n');
    try {
      await rename(staging, dirname(paths.cert));
    } catch (error: unknown) {
      await rm(staging, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw error;
      // Another process made it first, or the folder holds something else.
      const theirs = await LocalCa.#read(paths);
      if (theirs === undefined) throw new Error(`${dirname(paths.cert)}: has no root.pem but is not empty; move it away to make a new local CA`, { cause: error });
      return theirs;
    }
    return new LocalCa(paths.cert, cert, keys);
  }

  /** The CA in the files, or undefined when there is no certificate file. */
  static async #read(paths: { cert: string; key: string }): Promise<LocalCa | undefined> {
    const certPem = await readIfExists(paths.cert);
    if (certPem === undefined) return undefined;
    const keyPem = await readIfExists(paths.key);
    if (keyPem === undefined) throw new Error(`${paths.key}: the local CA's key is missing (remove ${paths.cert} to make a new CA)`);
    return LocalCa.#fromPem(paths.cert, certPem, keyPem);
  }

  static async #fromPem(file: string, certPem: string, keyPem: string): Promise<LocalCa> {
    const cert = new x509.X509Certificate(certPem);
    if (cert.notAfter.getTime() <= Date.now()) throw new Error(`${file}: the local CA expired on ${cert.notAfter.toISOString()} (remove it to make a new one)`);
    const privateKey = (await webcrypto.subtle.importKey('pkcs8', pemBody(keyPem), KEY_ALGORITHM, true, ['sign'])) as CryptoKey;
    const publicKey = await cert.publicKey.export(KEY_ALGORITHM, ['verify']);
    return new LocalCa(file, cert, { privateKey, publicKey });
  }

  /** A leaf certificate for DNS names and IP addresses (the first is also the subject's CN). */
  async issue(names: readonly string[], lifetimeMs = LEAF_LIFETIME_MS): Promise<PemPair> {
    const keys = await generateKeys();
    const now = Date.now();
    const notAfter = Math.min(now + lifetimeMs, this.#cert.notAfter.getTime());
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serialNumber(),
      subject: `CN=${names[0] ?? 'localhost'}`,
      issuer: this.#cert.subject,
      notBefore: new Date(now - BACKDATE_MS),
      notAfter: new Date(notAfter),
      publicKey: keys.publicKey,
      signingKey: this.#keys.privateKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(this.#keys.publicKey),
        new x509.SubjectAlternativeNameExtension(names.map((n): x509.JsonGeneralName => ({ type: isIP(n) !== 0 ? 'ip' : 'dns', value: n }))),
      ],
    });
    // The leaf alone: clients trust the root itself, so it need not be sent.
    return { certPem: `${leaf.toString('pem')}\n`, keyPem: await keyPem(keys.privateKey) };
  }

  /** True when `certPem`'s leaf was signed by this CA. */
  signed(certPem: string): boolean {
    try {
      return new NodeX509(certPem).checkIssued(new NodeX509(this.#cert.toString('pem')));
    } catch {
      // Not a certificate: certainly not ours.
      return false;
    }
  }
}

async function generateKeys(): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

function pemBody(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

/** 16 random bytes, positive and without a leading zero byte (RFC 5280 §4.1.2.2). */
function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return Buffer.from(bytes).toString('hex');
}
