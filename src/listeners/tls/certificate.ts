/** One certificate and its key, read from files and checked: the names it serves, its key type, its validity. */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readPemFile } from '../../config/pem-file.ts';
import { errorMessage } from '../../core/caught.ts';

/** A certificate file pair as configured. */
export interface CertificateFiles {
  readonly cert: string;
  readonly key: string;
}

/** A certificate ready to serve. */
export interface LoadedCertificate {
  readonly files: CertificateFiles;
  /** DNS names (lower case; wildcards as "*.example.com"), from subjectAltName, else the subject's CN. */
  readonly names: readonly string[];
  /** "rsa", "ec", "ed25519"...: certificates of different key types can serve the same names. */
  readonly keyType: string;
  /** The certificate chain (leaf first) and the key, PEM. */
  readonly certPem: string;
  readonly keyPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Reads and checks a pair; throws an Error that names the file and what is wrong with it. */
export function loadCertificate(files: CertificateFiles): LoadedCertificate {
  const certPem = readPemFile(files.cert, 'certificate');
  const keyPem = readPemFile(files.key, 'key');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(certPem);
  } catch (error: unknown) {
    throw new Error(`${files.cert}: not a PEM certificate (${errorMessage(error)})`, { cause: error });
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error: unknown) {
    throw new Error(`${files.key}: not a PEM private key (${errorMessage(error)})`, { cause: error });
  }
  if (!leaf.checkPrivateKey(key)) throw new Error(`${files.key}: this key does not belong to the certificate in ${files.cert}`);
  const names = namesOf(leaf);
  if (names.length === 0) throw new Error(`${files.cert}: the certificate names no DNS name (subjectAltName or CN)`);
  return { files, names, keyType: key.asymmetricKeyType ?? 'unknown', certPem, keyPem, notBefore: new Date(leaf.validFrom), notAfter: new Date(leaf.validTo) };
}

/** DNS names of subjectAltName ("DNS:a.example, IP Address:127.0.0.1"), else the CN. */
function namesOf(cert: X509Certificate): string[] {
  const dns = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (dns.length > 0) return dns;
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}
