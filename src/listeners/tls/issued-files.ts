/**
 * Certificates Gatehouse makes or obtains, kept as file pairs in the state directory (NAME.pem,
 * NAME.key, owner-only) and served through the same loader as configured files.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { writePrivateFile } from '../../core/state-dir.ts';
import { loadCertificate, type CertificateFiles, type LoadedCertificate } from './certificate.ts';
import type { LocalCa, PemPair } from './local-ca.ts';
import { renewalTime } from './renewal.ts';

/** The file pair for `stem` in `dir`. */
export function pairIn(dir: string, stem: string): CertificateFiles {
  return { cert: join(dir, `${stem}.pem`), key: join(dir, `${stem}.key`) };
}

/** Writes a pair: the key first, so that a certificate on disk always has its key. */
export async function savePair(files: CertificateFiles, pem: PemPair): Promise<LoadedCertificate> {
  await writePrivateFile(files.key, pem.keyPem);
  await writePrivateFile(files.cert, pem.certPem);
  return loadCertificate(files);
}

/** The stored pair when it loads, has not expired and is accepted; undefined otherwise (missing, broken, expired). */
export function loadValid(files: CertificateFiles, accept: (cert: LoadedCertificate) => boolean = () => true): LoadedCertificate | undefined {
  let loaded: LoadedCertificate;
  try {
    loaded = loadCertificate(files);
  } catch {
    // Missing or unreadable: a new one is made, which is what the caller does with undefined.
    return undefined;
  }
  return Date.now() < loaded.notAfter.getTime() && accept(loaded) ? loaded : undefined;
}

/** The stored pair when it is valid, accepted and not yet due for renewal. */
export function loadFresh(files: CertificateFiles, accept: (cert: LoadedCertificate) => boolean = () => true): LoadedCertificate | undefined {
  const loaded = loadValid(files, accept);
  return loaded !== undefined && Date.now() < renewalTimeOf(loaded) ? loaded : undefined;
}

/** When `cert` should be renewed (two thirds of its life). */
export function renewalTimeOf(cert: LoadedCertificate): number {
  return renewalTime(cert.notBefore, cert.notAfter);
}

/** A stable file stem for a set of names: readable, and short however many names there are. */
export function stemFor(names: readonly string[]): string {
  const first = (names[0] ?? 'none').replace(/^\*\./, '_wildcard.').replace(/[^a-z0-9.-]/g, '_');
  if (names.length === 1) return first;
  const hash = createHash('sha256').update([...names].sort().join(',')).digest('hex').slice(0, 12);
  return `${first}+${names.length - 1}-${hash}`;
}

/**
 * A certificate of the local CA for `names`, stored under `dir`: the stored one while it is fresh,
 * for the same names and signed by this CA; else a new one.
 */
export async function localCertificate(ca: LocalCa, dir: string, names: readonly string[]): Promise<LoadedCertificate> {
  const files = pairIn(dir, stemFor(names));
  const fresh = loadFresh(files, (cert) => ca.signed(cert.certPem) && sameNames(cert, names));
  return fresh ?? savePair(files, await ca.issue(names));
}

/** The certificate's DNS names are those asked for (IP addresses are not in `names` of a load). */
function sameNames(cert: LoadedCertificate, names: readonly string[]): boolean {
  const dns = names.filter((n) => isIP(n) === 0);
  if (dns.length === 0) return true;
  return dns.length === cert.names.length && dns.every((n) => cert.names.includes(n));
}
