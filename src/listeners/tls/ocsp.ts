/**
 * OCSP (RFC 6960) for stapling: the request for one certificate, the POST to its responder, and the
 * checks a response must pass before it is stapled (the right certificate, a valid signature by the
 * issuer or a responder it delegated to, not expired). Pure protocol; caching and timing live in
 * ocsp-stapler.ts.
 */
import { createHash, verify as verifySignature, X509Certificate } from 'node:crypto';
import { BasicOCSPResponse, CertID, id_kp_OCSPSigning, id_pkix_ocsp_basic, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, TBSRequest } from '@peculiar/asn1-ocsp';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { AlgorithmIdentifier, Certificate } from '@peculiar/asn1-x509';
import type { OcspTarget } from './ocsp-target.ts';

/** What stapling needs to know about one certificate: where to ask and what to ask. */
export interface OcspSubject extends OcspTarget {
  /** The CertID that names the leaf in requests and responses. */
  readonly certId: CertID;
}

/** A response that passed the checks, ready to staple. */
export interface OcspResponse {
  /** The whole OCSPResponse, DER: what is stapled. */
  readonly der: Buffer;
  readonly status: 'good' | 'revoked' | 'unknown';
  readonly thisUpdate: Date;
  /** When the responder will have newer information; a response without one is refreshed as if it lived an hour. */
  readonly nextUpdate: Date;
}

/** A responder that answers slower than this is given up on until the next try. */
export const FETCH_TIMEOUT_MS = 10_000;
/** Responses are a few kilobytes; anything much larger is not one. */
const MAX_RESPONSE_BYTES = 64 * 1024;
const SHA1 = '1.3.14.3.2.26';
/** Signature algorithms responders use, by OID: the hash node:crypto verifies with (undefined: the key's own, as Ed25519). */
const SIGNATURE_HASHES: ReadonlyMap<string, string | undefined> = new Map([
  ['1.2.840.113549.1.1.5', 'sha1'],
  ['1.2.840.113549.1.1.11', 'sha256'],
  ['1.2.840.113549.1.1.12', 'sha384'],
  ['1.2.840.113549.1.1.13', 'sha512'],
  ['1.2.840.10045.4.1', 'sha1'],
  ['1.2.840.10045.4.3.2', 'sha256'],
  ['1.2.840.10045.4.3.3', 'sha384'],
  ['1.2.840.10045.4.3.4', 'sha512'],
  ['1.3.101.112', undefined],
]);

/** The subject of a target: its CertID added. */
export function ocspSubjectFor(target: OcspTarget): OcspSubject {
  return { ...target, certId: certIdOf(target.leaf, target.issuer) };
}

/** RFC 6960 §4.1.1: SHA-1 of the issuer's name and of its public key (the BIT STRING's value), and the serial. */
function certIdOf(leaf: X509Certificate, issuer: X509Certificate): CertID {
  const leafAsn = AsnConvert.parse(leaf.raw, Certificate);
  const issuerAsn = AsnConvert.parse(issuer.raw, Certificate);
  const sha1 = (data: ArrayBuffer): OctetString => new OctetString(createHash('sha1').update(new Uint8Array(data)).digest());
  return new CertID({
    hashAlgorithm: new AlgorithmIdentifier({ algorithm: SHA1, parameters: null }),
    issuerNameHash: sha1(AsnConvert.serialize(leafAsn.tbsCertificate.issuer)),
    issuerKeyHash: sha1(issuerAsn.tbsCertificate.subjectPublicKeyInfo.subjectPublicKey),
    serialNumber: leafAsn.tbsCertificate.serialNumber,
  });
}

/** The DER OCSPRequest for one certificate (no nonce: responses are shared by every handshake). */
export function ocspRequestOf(subject: OcspSubject): Buffer {
  const request = new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: [new Request({ reqCert: subject.certId })] }) });
  return Buffer.from(AsnConvert.serialize(request));
}

/** POSTs the request (RFC 6960 Appendix A.1) and checks the answer; throws an Error saying what is wrong. `stop` aborts it. */
export async function fetchOcspResponse(subject: OcspSubject, stop?: AbortSignal): Promise<OcspResponse> {
  const timeout = AbortSignal.timeout(FETCH_TIMEOUT_MS);
  const answer = await fetch(subject.url, {
    method: 'POST',
    headers: { 'content-type': 'application/ocsp-request', accept: 'application/ocsp-response' },
    body: new Uint8Array(ocspRequestOf(subject)),
    signal: stop === undefined ? timeout : AbortSignal.any([timeout, stop]),
    redirect: 'follow',
  });
  if (answer.status !== 200) {
    await answer.body?.cancel();
    throw new Error(`OCSP responder ${subject.url} answered ${answer.status}`);
  }
  const length = Number(answer.headers.get('content-length') ?? '0');
  if (length > MAX_RESPONSE_BYTES) {
    await answer.body?.cancel();
    throw new Error(`OCSP responder ${subject.url} sent ${length} bytes`);
  }
  const der = Buffer.from(await answer.arrayBuffer());
  if (der.length > MAX_RESPONSE_BYTES) throw new Error(`OCSP responder ${subject.url} sent ${der.length} bytes`);
  return checkOcspResponse(der, subject);
}

/** Parses and checks a DER OCSPResponse for `subject`; throws an Error saying what is wrong. */
export function checkOcspResponse(der: Buffer, subject: OcspSubject, now = new Date()): OcspResponse {
  const response = AsnConvert.parse(der, OCSPResponse);
  if (response.responseStatus !== OCSPResponseStatus.successful) {
    throw new Error(`OCSP responder answered ${OCSPResponseStatus[response.responseStatus] ?? response.responseStatus}`);
  }
  if (response.responseBytes === undefined || response.responseBytes.responseType !== id_pkix_ocsp_basic) {
    throw new Error('OCSP response is not a basic response');
  }
  const basic = AsnConvert.parse(response.responseBytes.response.buffer, BasicOCSPResponse);
  checkSignature(basic, subject.issuer);
  const wanted = Buffer.from(AsnConvert.serialize(subject.certId));
  const single = basic.tbsResponseData.responses.find((r) => Buffer.from(AsnConvert.serialize(r.certID)).equals(wanted));
  if (single === undefined) throw new Error('OCSP response is not about this certificate');
  const status = single.certStatus.revoked !== undefined ? 'revoked' : single.certStatus.good !== undefined ? 'good' : 'unknown';
  const nextUpdate = single.nextUpdate ?? new Date(now.getTime() + 3_600_000);
  if (nextUpdate.getTime() <= now.getTime()) throw new Error(`OCSP response expired at ${nextUpdate.toISOString()}`);
  if (single.thisUpdate.getTime() > now.getTime() + 300_000) throw new Error('OCSP response is from the future');
  return { der, status, thisUpdate: single.thisUpdate, nextUpdate };
}

/**
 * RFC 6960 §4.2.2.2: signed by the issuer itself, or by a certificate in the response that the
 * issuer signed for OCSP signing (id-kp-OCSPSigning).
 */
function checkSignature(basic: BasicOCSPResponse, issuer: X509Certificate): void {
  const tbs = basic.tbsResponseDataRaw ?? AsnConvert.serialize(basic.tbsResponseData);
  const oid = basic.signatureAlgorithm.algorithm;
  if (!SIGNATURE_HASHES.has(oid)) throw new Error(`OCSP response signed with an unsupported algorithm ${oid}`);
  const hash = SIGNATURE_HASHES.get(oid) ?? null;
  const signature = new Uint8Array(basic.signature);
  const data = new Uint8Array(tbs);
  if (verifySignature(hash, data, issuer.publicKey, signature)) return;
  for (const asn of basic.certs ?? []) {
    const delegate = new X509Certificate(Buffer.from(AsnConvert.serialize(asn)));
    if (!delegate.checkIssued(issuer) || !delegate.verify(issuer.publicKey)) continue;
    if (!(delegate.keyUsage ?? []).includes(id_kp_OCSPSigning)) continue;
    const validTo = new Date(delegate.validTo).getTime();
    if (validTo < Date.now()) continue;
    if (verifySignature(hash, data, delegate.publicKey, signature)) return;
  }
  throw new Error('OCSP response signature does not verify against the issuer or a responder it authorised');
}
