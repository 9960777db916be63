/**
 * Certificates made at test time (never committed): a CA and the leaf certificates it signs, RSA or
 * ECDSA, for DNS names and IP addresses, written to a temporary directory when a test needs files.
 */
import { writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as Crypto);

export type KeyType = 'ec' | 'rsa';

/** A certificate and its private key, both PEM. */
export interface CertPem {
  readonly cert: string;
  /** PKCS#8 PEM. */
  readonly key: string;
}

export interface LeafOptions {
  /** DNS names and IP addresses for the SAN; the first is also the subject CN. */
  readonly names: readonly string[];
  readonly keyType?: KeyType;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** An OCSP responder URL for the Authority Information Access extension. */
  readonly ocspUrl?: string;
  /** Makes a client certificate (clientAuth) instead of a server one. */
  readonly client?: boolean;
  /** Makes an OCSP signing certificate. */
  readonly ocspSigner?: boolean;
}

export interface TestCa extends CertPem {
  readonly name: string;
  /** Signs a leaf certificate with this CA. */
  issue(options: LeafOptions): Promise<CertPem>;
}

const DAY = 86_400_000;

function algorithm(keyType: KeyType): RsaHashedKeyGenParams | EcKeyGenParams {
  return keyType === 'rsa'
    ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 }
    : { name: 'ECDSA', namedCurve: 'P-256' };
}

function signing(keyType: KeyType): Algorithm | EcdsaParams {
  return keyType === 'rsa' ? { name: 'RSASSA-PKCS1-v1_5' } : ({ name: 'ECDSA', hash: 'SHA-256' } as EcdsaParams);
}

async function generate(keyType: KeyType): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algorithm(keyType), true, ['sign', 'verify'])) as CryptoKeyPair;
}

async function keyPem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  const body = der.toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
}

function serial(): string {
  // Positive (high bit clear) and never starting with 00.
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] as number) & 0x7f) | 0x10;
  return Buffer.from(bytes).toString('hex');
}

/** A new CA (self-signed, 10 days) that can issue leaf certificates. */
export async function createCa(name = 'Gatehouse Test CA', keyType: KeyType = 'ec'): Promise<TestCa> {
  const keys = await generate(keyType);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${name}`,
    notBefore: new Date(now - DAY),
    notAfter: new Date(now + 10 * DAY),
    keys,
    signingAlgorithm: signing(keyType),
    extensions: [
      new x509.BasicConstraintsExtension(true, 1, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const caPem = cert.toString('pem');
  return {
    name,
    cert: `${caPem}\n`,
    key: await keyPem(keys.privateKey),
    async issue(options: LeafOptions): Promise<CertPem> {
      const leafType = options.keyType ?? 'ec';
      const leafKeys = await generate(leafType);
      const [first = 'localhost'] = options.names;
      const usages = options.ocspSigner
        ? [x509.ExtendedKeyUsage.ocspSigning]
        : [options.client ? x509.ExtendedKeyUsage.clientAuth : x509.ExtendedKeyUsage.serverAuth];
      const extensions: x509.Extension[] = [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(
          leafType === 'rsa' ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment : x509.KeyUsageFlags.digitalSignature,
          true,
        ),
        new x509.ExtendedKeyUsageExtension(usages),
        await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
        await x509.AuthorityKeyIdentifierExtension.create(keys.publicKey),
      ];
      if (options.names.length > 0) {
        extensions.push(
          new x509.SubjectAlternativeNameExtension(options.names.map((n): x509.JsonGeneralName => ({ type: isIP(n) !== 0 ? 'ip' : 'dns', value: n }))),
        );
      }
      if (options.ocspUrl !== undefined) extensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [options.ocspUrl] }));
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${first}`,
        issuer: cert.subject,
        notBefore: options.notBefore ?? new Date(Date.now() - DAY),
        notAfter: options.notAfter ?? new Date(Date.now() + 5 * DAY),
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: signing(keyType),
        extensions,
      });
      return { cert: `${leaf.toString('pem')}\n`, key: await keyPem(leafKeys.privateKey) };
    },
  };
}

/** A temporary directory removed when the test ends (process.ts's, here beside writePair for the tests that write certificates). */
export { tempDir } from './process.ts';

/** Writes `pem` as NAME.pem and NAME.key in `dir`; returns both paths. */
export async function writePair(dir: string, name: string, pem: CertPem): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.pem`);
  const key = join(dir, `${name}.key`);
  await writeFile(cert, pem.cert);
  await writeFile(key, pem.key, { mode: 0o600 });
  return { cert, key };
}
