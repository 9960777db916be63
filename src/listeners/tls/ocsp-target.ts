/**
 * Whether a certificate can be stapled, read with node:crypto alone: the responder its leaf names
 * (Authority Information Access) and its issuer in the chain. The OCSP protocol itself (ocsp.ts,
 * with its ASN.1 libraries) is loaded only once a certificate turns out to name a responder: those
 * libraries cost a proxy that never staples ~10% of its throughput on large bodies (bench: the
 * thin proxy with them imported).
 */
import { X509Certificate } from 'node:crypto';

/** A certificate that names a responder, and its issuer. */
export interface OcspTarget {
  /** The leaf certificate, DER (as node:tls hands it to the 'OCSPRequest' event). */
  readonly der: Buffer;
  readonly leaf: X509Certificate;
  /** The responder URL from the Authority Information Access extension. */
  readonly url: string;
  /** The certificate that signed the leaf (from the chain in the certificate file). */
  readonly issuer: X509Certificate;
}

/**
 * The OCSP target of a certificate chain (PEM, leaf first), or null when the leaf names no
 * responder or its issuer is not in the chain (nothing to staple then).
 */
export function ocspTargetOf(chainPem: string): OcspTarget | null {
  const blocks = chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  const [leafPem, ...rest] = blocks;
  if (leafPem === undefined) return null;
  const leaf = new X509Certificate(leafPem);
  const url = /OCSP - URI:(\S+)/.exec(leaf.infoAccess ?? '')?.[1];
  if (url === undefined || !/^https?:\/\//i.test(url)) return null;
  const issuer = rest.map((pem) => new X509Certificate(pem)).find((candidate) => leaf.checkIssued(candidate) && leaf.verify(candidate.publicKey));
  if (issuer === undefined) return null;
  return { der: leaf.raw, leaf, url, issuer };
}
