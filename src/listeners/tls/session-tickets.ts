/**
 * TLS session resumption with tickets (RFC 8446 §4.6.1, RFC 5077): the keys that encrypt tickets,
 * rotated on a fixed schedule. A key is derived from a secret and the number of the current period
 * (HKDF, RFC 5869), so every process that holds the same secret uses the same key at the same time
 * without talking to the others: workers can share the secret (read from a file or handed over by
 * the primary) and resume each other's sessions.
 *
 * Trade-off: node:tls holds one ticket key per server (setTicketKeys takes exactly 48 bytes: a
 * 16-byte name, a 16-byte HMAC key and a 16-byte AES key), so the previous key cannot be kept for
 * decryption. At each rotation, tickets issued under the old key stop resuming; those clients make
 * one full handshake and get a new ticket. A ticket therefore lives at most one rotation interval,
 * which also bounds how much traffic a stolen key could decrypt (forward secrecy of resumptions).
 */
import { hkdfSync, randomBytes } from 'node:crypto';
import type { Server as TlsServer } from 'node:tls';

/** node:tls ticket key size: key name (16) + HMAC secret (16) + AES key (16). */
export const TICKET_KEY_BYTES = 48;
/** TLS 1.3 forbids ticket lifetimes above seven days (RFC 8446 §4.6.1). */
const MAX_LIFETIME_S = 7 * 86_400;

/** Where ticket keys come from: the same source gives the same key for the same period, in every process. */
export interface TicketKeySource {
  /** The 48-byte key for rotation period number `period` (milliseconds since the epoch / interval). */
  keyFor(period: number): Buffer;
}

/** Keys derived from one secret by HKDF-SHA256; `context` keeps listeners that share a secret apart. */
export class DerivedTicketKeys implements TicketKeySource {
  readonly #secret: Buffer;
  readonly #context: string;

  /** `secret`: at least 32 random bytes (randomTicketSecret() for a process of its own). */
  constructor(secret: Buffer, context = '') {
    if (secret.length < 32) throw new Error('a session ticket secret needs at least 32 bytes');
    this.#secret = Buffer.from(secret);
    this.#context = context;
  }

  keyFor(period: number): Buffer {
    return Buffer.from(hkdfSync('sha256', this.#secret, 'gatehouse session tickets', `${this.#context}|${period}`, TICKET_KEY_BYTES));
  }
}

/** A fresh random secret: tickets resume only in this process. */
export function randomTicketSecret(): Buffer {
  return randomBytes(32);
}

/** Installs the current ticket key on a TLS server and replaces it at each period boundary. */
export class SessionTickets {
  readonly #source: TicketKeySource;
  readonly #interval: number;
  #server: TlsServer | null = null;
  #period = -1;
  #timer: NodeJS.Timeout | undefined;

  /** `interval`: how long one key serves, in milliseconds. */
  constructor(source: TicketKeySource, interval: number) {
    this.#source = source;
    this.#interval = interval;
  }

  /** How long the server should accept a session (node's sessionTimeout, seconds): one key's life. */
  get lifetimeSeconds(): number {
    return Math.max(1, Math.min(MAX_LIFETIME_S, Math.ceil(this.#interval / 1000)));
  }

  /** The key of the current period (for the server options, and after setSecureContext replaced the context). */
  currentKey(now = Date.now()): Buffer {
    this.#period = Math.floor(now / this.#interval);
    return this.#source.keyFor(this.#period);
  }

  /** Starts rotating the keys of `server` (a context swap keeps them: the store passes currentKey() with it). */
  attach(server: TlsServer): void {
    this.#server = server;
    this.#install();
  }

  /** Stops rotating. */
  close(): void {
    clearTimeout(this.#timer);
    this.#server = null;
  }

  #install(): void {
    clearTimeout(this.#timer);
    const server = this.#server;
    if (server === null) return;
    const now = Date.now();
    server.setTicketKeys(this.currentKey(now));
    // Wake at the next boundary, so that every process sharing the source switches together.
    this.#timer = setTimeout(() => this.#install(), (this.#period + 1) * this.#interval - now + 1);
    this.#timer.unref();
  }
}
