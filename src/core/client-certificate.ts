/**
 * The verified client certificate of a connection (mTLS), as the backend is told about it: only
 * Gatehouse writes X-Client-Cert-Subject; a client's own copy of the header is always dropped.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';

/** The request header that carries the verified client certificate's subject to the backend. */
export const CLIENT_SUBJECT_HEADER = 'x-client-cert-subject';

const SUBJECT = Symbol('gatehouse.clientSubject');

type SubjectSocket = Socket & Partial<Pick<TLSSocket, 'authorized' | 'getPeerX509Certificate'>> & { [SUBJECT]?: string | null };

/**
 * The subject of the client certificate this connection presented and the listener's CA verified,
 * as an RFC 4514 string ("CN=alice,O=Example"); null when there is none (a plain connection, no
 * certificate, or one that did not verify). Worked out once per connection.
 */
export function verifiedClientSubject(socket: Socket): string | null {
  const s = socket as SubjectSocket;
  let subject = s[SUBJECT];
  if (subject === undefined) {
    subject = s.authorized === true ? formatSubject(s.getPeerX509Certificate?.()?.subject) : null;
    s[SUBJECT] = subject;
  }
  return subject;
}

/**
 * node:crypto gives the subject one attribute a line, most significant first, special characters
 * already escaped as RFC 4514 wants (`\,`); RFC 4514 lists them the other way round, comma-separated.
 * Anything outside printable ASCII becomes \XX (UTF-8 bytes), so the value is a valid header field.
 */
function formatSubject(subject: string | undefined): string | null {
  if (subject === undefined || subject === '') return null;
  const rfc4514 = subject.split('\n').reverse().join(',');
  return rfc4514.replace(/[^\x20-\x7e]/gu, (c) => [...Buffer.from(c)].map((b) => `\\${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''));
}
