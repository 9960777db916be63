/**
 * TLS settings of a listener beyond its certificates: session resumption and client certificates
 * (mTLS). Spread into the listener's `tls` block (listener-schema.ts); see docs/tls.md.
 */
import { z } from 'zod';
import { duration } from './units.ts';

/** Client certificates (mTLS): which CA vouches for them and whether a client must present one. */
export const clientAuthSchema = z.strictObject({
  /** PEM file of the CA certificate(s) that client certificates must chain to. */
  ca: z.string().min(1),
  /**
   * true: a client without a valid certificate is refused in the handshake. false: it is served,
   * but only verified certificates reach the backend (X-Client-Cert-Subject).
   */
  required: z.boolean().default(true),
});

/** The fields added to a listener's `tls` block. */
export const tlsHandshakeFields = {
  /** Resume sessions with TLS session tickets, which saves a full handshake on reconnects. */
  session_tickets: z.boolean().default(true),
  /** How long one ticket key serves before the next replaces it (a ticket resumes at most this long); 1m to 7 days. */
  session_ticket_rotation: duration
    .default(12 * 3_600_000)
    .refine((ms) => ms >= 60_000 && ms <= 7 * 86_400_000, 'must be between 1m and 7 days (168h)'),
  /** Ask clients for a certificate and verify it against this CA (mTLS). */
  client_auth: clientAuthSchema.optional(),
};

export type ClientAuthConfig = z.output<typeof clientAuthSchema>;
