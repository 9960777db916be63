/**
 * A TLS listener's certificates: files, a local CA (`internal`) and ACME (`acme`), alone or
 * together; see docs/tls.md. Imported by listener-schema.ts.
 */
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { z } from 'zod';
import { tlsHandshakeFields } from './tls-handshake-schema.ts';
import { defaultStateDir } from '../core/state-dir.ts';
import type { Problem } from './problem.ts';

/** Let's Encrypt's production directory: the default ACME server. */
export const LETS_ENCRYPT_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory';

/** One label of a DNS name (RFC 1123 §2.1): letters, digits and inner hyphens, 63 characters at most. */
export const DNS_LABEL = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';
/** A DNS name of letter-digit-hyphen labels (RFC 1123), lower case; "*." may lead. */
const DNS_NAME = new RegExp(`^(?:\\*\\.)?(?:${DNS_LABEL}\\.)*${DNS_LABEL}$`);

const lowerCase = z.string().transform((value) => value.toLowerCase());

/** A DNS name ("app.example.com", "*.example.com", "localhost") or an IP address. */
const hostOrIp = lowerCase.refine((value) => isIP(value) !== 0 || (DNS_NAME.test(value) && value.length <= 253), {
  message: 'must be a DNS name (app.example.com, *.example.com) or an IP address',
});

/** A DNS name an ACME server can validate over HTTP-01: no IP address, no wildcard. */
const acmeName = lowerCase.superRefine((value, ctx) => {
  if (isIP(value) !== 0) ctx.addIssue({ code: 'custom', message: 'must be a DNS name: ACME certificates for IP addresses are not supported' });
  else if (value.startsWith('*.')) ctx.addIssue({ code: 'custom', message: 'wildcard names need the DNS-01 challenge, which Gatehouse does not answer; list the names' });
  else if (!DNS_NAME.test(value) || value.length > 253) ctx.addIssue({ code: 'custom', message: 'must be a DNS name such as app.example.com' });
});

/** Certificates from the local CA that Gatehouse makes in the state directory. */
export const internalTlsSchema = z.strictObject({
  /** Names the certificate is issued for: DNS names, wildcards and IP addresses. */
  names: z.array(hostOrIp).min(1),
});

/** Certificates from an ACME server (RFC 8555), validated by HTTP-01 on the plain listeners. */
export const acmeTlsSchema = z.strictObject({
  /** The account's contact address, where the CA sends expiry warnings. */
  email: z.email('must be an email address').optional(),
  /** The ACME directory URL; Let's Encrypt's production server unless set. */
  directory: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).default(LETS_ENCRYPT_DIRECTORY),
  /** The names to get certificates for, one certificate per name. */
  names: z.array(acmeName).min(1),
  /** A CA file (PEM) to trust for the ACME server's own HTTPS, beside the system's (e.g. pebble's test CA). */
  ca_file: z.string().min(1).optional(),
});

/** TLS termination: the certificates chosen by SNI; at least one source. */
export const listenerTlsSchema = z
  .strictObject({
    /** Certificate files; the names they are served for come from each certificate. */
    certificates: z.array(z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })).default([]),
    /** Certificates from Gatehouse's local CA (for development): `internal: { names: [...] }`. */
    internal: internalTlsSchema.optional(),
    /** Certificates from an ACME server such as Let's Encrypt. */
    acme: acmeTlsSchema.optional(),
    ...tlsHandshakeFields,
  })
  .superRefine((value, ctx) => {
    if (value.certificates.length === 0 && value.internal === undefined && value.acme === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'needs certificates, internal or acme' });
    }
  });

/**
 * Where Gatehouse keeps what it makes (local CA, ACME account and certificates), owner-only;
 * $XDG_DATA_HOME/gatehouse or ~/.local/share/gatehouse unless set. Relative paths are from the
 * working directory.
 */
export const stateDirSchema = z
  .string()
  .min(1)
  .transform((value) => resolve(value))
  .default(() => defaultStateDir());

export type ListenerTlsConfig = z.output<typeof listenerTlsSchema>;
export type InternalTlsConfig = z.output<typeof internalTlsSchema>;
export type AcmeTlsConfig = z.output<typeof acmeTlsSchema>;

/**
 * ACME certificates are validated over HTTP-01 (RFC 8555 §8.3), which only a plain listener
 * answers: a file with `acme` and no plain listener could never get a certificate.
 */
export function acmeProblems(listen: readonly { readonly tls?: { readonly acme?: unknown } | undefined }[]): Problem[] {
  if (listen.some((l) => l.tls === undefined)) return [];
  return listen.flatMap((l, i) =>
    l.tls?.acme === undefined
      ? []
      : [{ path: ['listen', i, 'tls', 'acme'], message: 'needs a plain (non-TLS) listener to answer HTTP-01 challenges on, e.g. - address: :80' }],
  );
}
