/**
 * A listener's configuration: its address, protocols (HTTP/1.1, HTTP/2 by ALPN on TLS, h2c with
 * prior knowledge on plain listeners), TLS, and per-listener protection. Imported by schema.ts.
 */
import { z } from 'zod';
import { listenerProtection } from './protection-schema.ts';
import { tlsHandshakeFields } from './tls-handshake-schema.ts';
import { address, duration, size } from './units.ts';

/** HTTP/2 to clients: what is offered, and the defences that bound what one connection may cost. */
const http2Schema = z
  .strictObject({
    /** Offer h2 by ALPN on a TLS listener (plain listeners take HTTP/2 only with `h2c: true`). */
    enabled: z.boolean().default(true),
    /** Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). */
    max_concurrent_streams: z.number().int().min(1).max(10_000).default(100),
    /** Flow-control window of each stream for request bodies (SETTINGS_INITIAL_WINDOW_SIZE). */
    initial_window_size: size.default(256 * 1024),
    /** Most memory nghttp2 may hold for one connection (headers, frames waiting to be sent); past it, new streams are refused. */
    max_session_memory: size.default(16 * 1024 ** 2),
    /**
     * Streams a client may cancel before their answer is complete, per connection, before the
     * connection is closed (rapid reset, CVE-2023-44487); counted only once at least this many
     * streams were opened and while cancelled ones are more than half of them.
     */
    max_premature_resets: z.number().int().min(1).default(100),
    /** A stream whose answer cannot be sent for this long (the client keeps its window shut) is reset. */
    send_timeout: duration.default(30_000),
  })
  .prefault({});

/** HTTP Strict Transport Security (RFC 6797) on a TLS listener's answers. */
export const hstsSchema = z
  .strictObject({
    /** How long browsers keep to HTTPS; 0 tells them to forget it. */
    max_age: duration.default(365 * 86_400_000),
    include_subdomains: z.boolean().default(false),
    /** Asks for the browsers' preload lists (they require include_subdomains and at least a year). */
    preload: z.boolean().default(false),
  })
  .superRefine((value, ctx) => {
    if (value.preload && (!value.include_subdomains || value.max_age < 365 * 86_400_000)) {
      ctx.addIssue({ code: 'custom', path: ['preload'], message: 'needs include_subdomains: true and a max_age of at least 365d' });
    }
  });

/** The placeholder for the TLS block: replaced by the certificate schema (tls-schema.ts). */
export const listenerTlsSchema = z.strictObject({
  /** Certificate files; the names they are served for come from each certificate. */
  certificates: z.array(z.strictObject({ cert: z.string().min(1), key: z.string().min(1) })).min(1),
  ...tlsHandshakeFields,
});

export const listenerSchema = z
  .strictObject({
    address,
    ...listenerProtection,
    /** TLS termination: certificates (files, a local CA or ACME) chosen by SNI; see docs/tls.md. */
    tls: listenerTlsSchema.optional(),
    http2: http2Schema,
    /** On a plain listener, also take HTTP/2 with prior knowledge (RFC 9113 §3.3), as gRPC clients send it. */
    h2c: z.boolean().default(false),
    /** On a plain listener, answer every request with 308 to the same URL over https (ACME challenges excepted). */
    redirect_https: z
      .union([z.boolean(), z.strictObject({ /** The https port, when not 443. */ port: z.number().int().min(1).max(65535) })])
      .default(false),
    /** On a TLS listener, add Strict-Transport-Security to every answer; true for the defaults. */
    hsts: z.union([z.literal(false), z.literal(true).transform(() => hstsSchema.parse({})), hstsSchema]).default(false),
  })
  .superRefine((value, ctx) => {
    if (value.tls === undefined && value.hsts !== false) {
      ctx.addIssue({ code: 'custom', path: ['hsts'], message: 'only applies to a listener with tls' });
    }
    if (value.tls !== undefined && value.redirect_https !== false) {
      ctx.addIssue({ code: 'custom', path: ['redirect_https'], message: 'only applies to a plain (non-TLS) listener' });
    }
    if (value.tls !== undefined && value.h2c) {
      ctx.addIssue({ code: 'custom', path: ['h2c'], message: 'only applies to a plain listener (on TLS, HTTP/2 is offered by ALPN: http2.enabled)' });
    }
  });

export type ListenerConfig = z.output<typeof listenerSchema>;
export type Http2Config = ListenerConfig['http2'];
export type HstsConfig = z.output<typeof hstsSchema>;
