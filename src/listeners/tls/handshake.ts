/**
 * A TLS listener's handshake settings beyond certificates (session tickets, client certificates),
 * read and checked from the configuration, and the node:tls options they become.
 */
import { constants, createHash } from 'node:crypto';
import type { SecureContextOptions } from 'node:tls';
import { readCertificatesFile } from '../../config/pem-file.ts';
import type { ClientAuthConfig } from '../../config/tls-handshake-schema.ts';

/** Client certificate checking, with the CA already read. */
export interface ClientAuth {
  /** PEM certificates of the CA(s) client certificates must chain to. */
  readonly ca: string;
  /** A client without a valid certificate is refused in the handshake. */
  readonly required: boolean;
}

/** The handshake settings of one TLS listener. */
export interface HandshakeSettings {
  /** Resume sessions with tickets. */
  readonly sessionTickets: boolean;
  /** How long one ticket key serves, in milliseconds. */
  readonly ticketRotation: number;
  /** Null when no client certificate is asked for. */
  readonly clientAuth: ClientAuth | null;
}

/** The defaults: tickets rotated every 12 hours, no client certificates. */
export const DEFAULT_HANDSHAKE: HandshakeSettings = { sessionTickets: true, ticketRotation: 12 * 3_600_000, clientAuth: null };

/** The `tls` block's handshake fields, the CA file read and checked; throws an Error naming the file. */
export function handshakeSettingsOf(tls: { session_tickets: boolean; session_ticket_rotation: number; client_auth?: ClientAuthConfig | undefined }): HandshakeSettings {
  return { sessionTickets: tls.session_tickets, ticketRotation: tls.session_ticket_rotation, clientAuth: tls.client_auth === undefined ? null : readClientAuth(tls.client_auth) };
}

function readClientAuth(config: ClientAuthConfig): ClientAuth {
  return { ca: readCertificatesFile(config.ca, 'client CA'), required: config.required };
}

/**
 * Options every secure context of the listener needs (the default one and each SNI one: OpenSSL
 * verifies client certificates with the context chosen by SNI). The session id context names the
 * client-auth policy, so a session verified under one CA is never resumed under another.
 */
export function contextOptions(settings: HandshakeSettings, sessionTimeout: number): SecureContextOptions {
  const policy = settings.clientAuth === null ? 'none' : `${settings.clientAuth.required}:${settings.clientAuth.ca}`;
  return {
    sessionIdContext: createHash('sha256').update(policy).digest('hex').slice(0, 32),
    sessionTimeout,
    ...(settings.sessionTickets ? {} : { secureOptions: constants.SSL_OP_NO_TICKET }),
    ...(settings.clientAuth === null ? {} : { ca: settings.clientAuth.ca }),
  };
}

/** True when the two settings need different contexts or server options. */
export function sameHandshake(a: HandshakeSettings, b: HandshakeSettings): boolean {
  return (
    a.sessionTickets === b.sessionTickets &&
    a.ticketRotation === b.ticketRotation &&
    a.clientAuth?.ca === b.clientAuth?.ca &&
    a.clientAuth?.required === b.clientAuth?.required
  );
}
