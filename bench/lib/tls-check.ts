// What a TLS peer's handshakes are, checked before each TLS scenario: TLS 1.3 with the run's
// ECDSA P-256 certificate and, for the handshake scenario, no resumption (a client that kept the
// session of a first connection must get a full handshake on the second). wrk and h2load both
// resume sessions when the server offers tickets, so without this check "handshakes/s" could
// be resumptions.
import { connect } from 'node:tls';
import type { TLSSocket } from 'node:tls';

interface Connection {
  protocol: string | null;
  /** The certificate's curve as OpenSSL names it (prime256v1 for P-256), if it is an EC key. */
  curve: string | undefined;
  reused: boolean;
  /** The last session ticket the server sent, if it sent any. */
  session: Buffer | undefined;
}

/** One connection, one GET with Connection: close, read to the end. */
function oneConnection(url: URL, session: Buffer | undefined, timeoutMs = 5000): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connect({
      host: url.hostname,
      port: Number(url.port),
      rejectUnauthorized: false,
      ALPNProtocols: ['http/1.1'],
      ...(session === undefined ? {} : { session }),
    });
    let facts: Omit<Connection, 'session'> | undefined;
    let ticket: Buffer | undefined;
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`TLS check: no answer within ${timeoutMs} ms`)));
    socket.on('session', (data: Buffer) => (ticket = data));
    socket.once('secureConnect', () => {
      const certificate = socket.getPeerCertificate();
      facts = { protocol: socket.getProtocol(), curve: certificate.asn1Curve, reused: socket.isSessionReused() };
      socket.write(`GET ${url.pathname} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', () => {});
    socket.once('error', reject);
    socket.once('close', () => {
      if (facts === undefined) reject(new Error('TLS check: the connection closed before the handshake ended'));
      else resolve({ ...facts, session: ticket });
    });
  });
}

/**
 * Throws unless `url` negotiates TLS 1.3 with a P-256 certificate; with `fullOnly`, also unless a
 * second connection offering the first one's session gets a full handshake.
 */
export async function checkTlsHandshakes(url: string, fullOnly: boolean): Promise<void> {
  const target = new URL(url);
  const first = await oneConnection(target, undefined);
  if (first.protocol !== 'TLSv1.3') throw new Error(`TLS check: ${url} negotiated ${first.protocol ?? 'nothing'}, expected TLSv1.3`);
  if (first.curve !== 'prime256v1') throw new Error(`TLS check: ${url} served a ${first.curve ?? 'non-EC'} certificate, expected ECDSA P-256`);
  if (!fullOnly || first.session === undefined) return; // no ticket: nothing to resume
  const second = await oneConnection(target, first.session);
  if (second.reused) throw new Error(`TLS check: ${url} resumed a TLS session: handshakes would not all be full ones`);
}
