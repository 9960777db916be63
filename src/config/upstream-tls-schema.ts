/**
 * An upstream's `tls` block: how Gatehouse connects to its https:// servers (whom it trusts, the
 * name it asks for, the certificate it presents). Imported by schema.ts. The files are read and
 * checked when the configuration is loaded (backendTlsProblems, so that `gatehouse validate`
 * finds a missing file) and again when a snapshot is compiled (backend-tls-files.ts).
 */
import { z } from 'zod';
import { BackendTlsFileError, readBackendTls } from './backend-tls-files.ts';
import type { Problem } from './problem.ts';
import { DNS_LABEL } from './tls-schema.ts';

/** A DNS name (letters, digits, hyphens, dots), as SNI carries it: no trailing dot (RFC 6066 §3). */
const DNS_NAME = new RegExp(`^(?=.{1,253}$)${DNS_LABEL}(?:\\.${DNS_LABEL})*$`, 'i');

export const upstreamTlsSchema = z
  .strictObject({
    /** PEM file of the CA certificates that sign the servers' certificates; replaces the system's trusted roots. */
    ca: z.string().min(1).optional(),
    /** The name sent in SNI and checked against the servers' certificates; each server URL's host when absent. */
    servername: z.string().regex(DNS_NAME, 'must be a DNS name such as api.internal').optional(),
    /** PEM file of a client certificate (and its chain) presented to servers that ask for one (mTLS); needs key. */
    cert: z.string().min(1).optional(),
    /** PEM file of the client certificate's private key; needs cert. */
    key: z.string().min(1).optional(),
    /** Check the servers' certificates (chain and name). false turns every check off: for tests only, logged as a warning. */
    verify: z.boolean().default(true),
  })
  .superRefine((value, ctx) => {
    if (value.cert !== undefined && value.key === undefined) ctx.addIssue({ code: 'custom', path: ['key'], message: 'is required with cert' });
    if (value.key !== undefined && value.cert === undefined) ctx.addIssue({ code: 'custom', path: ['cert'], message: 'is required with key' });
    if (!value.verify && value.ca !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['ca'], message: 'is never used with verify: false (remove one of them)' });
    }
  });

/** An upstream's validated `tls` block. */
export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;

/**
 * The files of every upstream's `tls` block that cannot be used (missing, unreadable, not PEM, a
 * key that is not the certificate's), placed at the field that names them. Reads the file as
 * written, so that it runs even when the schema found problems elsewhere.
 */
export function backendTlsProblems(upstreams: unknown): Problem[] {
  if (typeof upstreams !== 'object' || upstreams === null) return [];
  const problems: Problem[] = [];
  for (const [name, upstream] of Object.entries(upstreams)) {
    const tls: unknown = typeof upstream === 'object' && upstream !== null ? (upstream as { tls?: unknown }).tls : undefined;
    if (tls === undefined) continue;
    const parsed = upstreamTlsSchema.safeParse(tls);
    if (!parsed.success) continue;
    try {
      readBackendTls(parsed.data);
    } catch (error: unknown) {
      if (!(error instanceof BackendTlsFileError)) throw error;
      problems.push({ path: ['upstreams', name, 'tls', error.field], message: error.message });
    }
  }
  return problems;
}
