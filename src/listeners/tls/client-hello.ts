/**
 * What a TLS ClientHello says about the certificates a client can check: whether it takes ECDSA
 * signatures. Read before the handshake when a name has both an ECDSA and an RSA certificate,
 * because Node's SNI callback installs only one certificate of a context (the last one set), so
 * the choice between the two must be made per connection (HAProxy reads the ClientHello the same
 * way). RFC 8446 §4.1.2 and §4.2.3, RFC 5246 §7.4.1.2.
 */

/** The ClientHello facts of a connection, put on its TCP socket by the listener. */
export const HELLO = Symbol('gatehouse.clientHello');

/** Record type 22 (handshake), ClientHello is handshake type 1. */
const HANDSHAKE = 22;
const CLIENT_HELLO = 1;
const SIGNATURE_ALGORITHMS = 13;
/** A record's body is at most 2^14 bytes (RFC 8446 §5.1); anything larger is not TLS. */
const MAX_RECORD = 16_384;

/** What the ClientHello offered; `ecdsa` is true when unknown (the ECDSA certificate is the default). */
export interface HelloFacts {
  readonly ecdsa: boolean;
}

const UNKNOWN: HelloFacts = { ecdsa: true };
const ECDSA: HelloFacts = { ecdsa: true };
const NO_ECDSA: HelloFacts = { ecdsa: false };

/**
 * Undefined while the first record is incomplete; otherwise the facts. Anything that is not a
 * readable ClientHello in one record gives UNKNOWN, and the handshake itself deals with it.
 */
export function readClientHello(data: Buffer): HelloFacts | undefined {
  if (data.length < 5) return data.length > 0 && data[0] !== HANDSHAKE ? UNKNOWN : undefined;
  if (data[0] !== HANDSHAKE) return UNKNOWN;
  const recordLength = data.readUInt16BE(3);
  if (recordLength > MAX_RECORD) return UNKNOWN;
  if (data.length < 5 + recordLength) return undefined;
  try {
    return parseHello(data.subarray(5, 5 + recordLength));
  } catch {
    // A field ran past the record: a ClientHello split over records, or garbage.
    return UNKNOWN;
  }
}

function parseHello(body: Buffer): HelloFacts {
  if (body[0] !== CLIENT_HELLO) return UNKNOWN;
  let at = 4 + 2 + 32; // handshake header, legacy_version, random
  at += 1 + byteAt(body, at); // legacy_session_id
  const suitesLength = body.readUInt16BE(at);
  const suites = body.subarray(at + 2, at + 2 + suitesLength);
  at += 2 + suitesLength;
  at += 1 + byteAt(body, at); // legacy_compression_methods
  if (at + 2 > body.length) return suitesOffer(suites); // no extensions: TLS 1.2 at most
  const end = Math.min(body.length, at + 2 + body.readUInt16BE(at));
  at += 2;
  while (at + 4 <= end) {
    const type = body.readUInt16BE(at);
    const length = body.readUInt16BE(at + 2);
    if (type === SIGNATURE_ALGORITHMS) return sigalgsOffer(body.subarray(at + 6, at + 4 + length));
    at += 4 + length;
  }
  return suitesOffer(suites);
}

/** SignatureScheme values 0x0403, 0x0503, 0x0603 (ecdsa_secpNNN_shaNNN) and 0x0203 (ecdsa_sha1). */
function sigalgsOffer(list: Buffer): HelloFacts {
  for (let i = 0; i + 1 < list.length; i += 2) {
    const hash = list[i] as number;
    if (list[i + 1] === 0x03 && hash >= 0x02 && hash <= 0x06) return ECDSA;
  }
  return NO_ECDSA;
}

/** Without signature_algorithms (RFC 5246 §7.4.1.4.1), only an ECDHE_ECDSA suite says ECDSA. */
function suitesOffer(suites: Buffer): HelloFacts {
  for (let i = 0; i + 1 < suites.length; i += 2) {
    const suite = suites.readUInt16BE(i);
    if ((suite >= 0xc006 && suite <= 0xc00a) || suite === 0xc023 || suite === 0xc024 || suite === 0xc02b || suite === 0xc02c || suite === 0xcca9) return ECDSA;
  }
  return NO_ECDSA;
}

function byteAt(buffer: Buffer, at: number): number {
  const value = buffer[at];
  if (value === undefined) throw new RangeError('past the end');
  return value;
}
