/** The headers sent to a server: the client's, minus hop-by-hop ones, plus forwarding headers and route edits. */
import { CLIENT_SUBJECT_HEADER, verifiedClientSubject } from '../core/client-certificate.ts';
import type { Exchange } from '../core/exchange.ts';
import { formatTraceparent } from '../core/tracing/trace-context.ts';
import { appendForwarded, isTrusted, type IncomingForwarded } from '../middleware/forwarded.ts';
import { applyToFlat, type HeaderOps } from '../middleware/headers.ts';
import { connectionListed, isHopByHop } from '../transport/hop-by-hop.ts';
import { decrementMaxForwards } from './max-forwards.ts';

/**
 * Builds a flat [name, value, ...] list from the raw headers (order and duplicates kept).
 * `teTrailers`: the server speaks HTTP/2, where `TE: trailers` is the one TE allowed (RFC 9113
 * §8.2.2) and gRPC servers look for it; it is passed on when the client sent it. (HTTP/1.1 would
 * need `Connection: TE` with it, which undici does not send.)
 */
export function buildRequestHeaders(ex: Exchange, ops: HeaderOps | null, teTrailers = false): string[] {
  const raw = ex.h2 ? http1Fields(ex.req.rawHeaders, ex.req.headers.host) : ex.req.rawHeaders;
  const policy = ex.snapshot.forwarding;
  const trusted = isTrusted(policy, ex.peer);
  const listed = ex.req.headers.connection === undefined ? null : connectionListed(ex.req.headers.connection);
  const addsForwarding = policy.xForwarded || policy.forwarded;
  let incoming: IncomingForwarded | null = null;
  const tracing = ex.snapshot.tracing;
  // Replaced by Gatehouse's own: the traceparent naming its span, the request id it settled on.
  const traced = tracing.enabled;
  const requestIdHeader = tracing.requestIdHeader;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    // Only Gatehouse says which client certificate was verified.
    if (isHopByHop(name) || name === 'expect' || name === CLIENT_SUBJECT_HEADER || listed?.has(name)) {
      if (teTrailers && name === 'te' && asksForTrailers(value)) {
        out.push('te', 'trailers');
        // Once, however many TE lines the client sent.
        teTrailers = false;
      }
      continue;
    }
    if ((traced && (name === 'traceparent' || (name === 'tracestate' && ex.parentSpanId === ''))) || name === requestIdHeader) continue;
    if (addsForwarding && isForwardingHeader(name)) {
      // Values from an untrusted peer are dropped: a client could claim any address.
      if (trusted) incoming = collectForwarded(incoming, name, value);
      continue;
    }
    out.push(name, value);
  }
  if (addsForwarding) appendForwarded(out, policy, ex.peer, ex.proto, ex.req.headers.host, incoming);
  if (ex.proto === 'https') {
    const subject = verifiedClientSubject(ex.req.socket);
    if (subject !== null) out.push(CLIENT_SUBJECT_HEADER, subject);
  }
  // W3C Trace Context §3.3: tracestate goes on unchanged with a valid traceparent (a new trace drops it, above).
  if (traced) out.push('traceparent', formatTraceparent(ex.traceId, ex.spanId, ex.sampled));
  if (requestIdHeader !== null) out.push(requestIdHeader, ex.requestId);
  const via = ex.h2 ? policy.viaH2 : policy.viaH1;
  if (via !== null) out.push('via', via);
  const method = ex.req.method;
  if ((method === 'OPTIONS' || method === 'TRACE') && ex.req.headers['max-forwards'] !== undefined) decrementMaxForwards(out);
  return ops === null ? out : applyToFlat(ops, out);
}


/**
 * An HTTP/2 request's fields as an HTTP/1.1 request carries them (RFC 9113 §8.3.1, §8.2.3): Host
 * from :authority, no pseudo-header fields, and the cookie crumbs joined into one Cookie field.
 */
function http1Fields(raw: readonly string[], host: string | undefined): string[] {
  const out: string[] = host === undefined ? [] : ['host', host];
  let cookie: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.charCodeAt(0) === 0x3a || name === 'host') continue;
    if (name === 'cookie') cookie = cookie === undefined ? (raw[i + 1] as string) : `${cookie}; ${raw[i + 1] as string}`;
    else out.push(name, raw[i + 1] as string);
  }
  if (cookie !== undefined) out.push('cookie', cookie);
  return out;
}

/** A TE value that lists the member "trailers" (RFC 9110 §10.1.4), case-insensitively; "trailersfoo" is another coding. */
function asksForTrailers(value: string): boolean {
  // What every gRPC client sends, on every call: no split.
  if (value === 'trailers') return true;
  for (const part of value.split(',')) if ((part.split(';')[0] ?? '').trim().toLowerCase() === 'trailers') return true;
  return false;
}

function isForwardingHeader(name: string): boolean {
  return name === 'x-forwarded-for' || name === 'x-forwarded-proto' || name === 'x-forwarded-host' || name === 'forwarded';
}

function collectForwarded(current: IncomingForwarded | null, name: string, value: string): IncomingForwarded {
  const incoming = current ?? { xff: undefined, proto: undefined, host: undefined, forwarded: undefined };
  switch (name) {
    case 'x-forwarded-for':
      incoming.xff = incoming.xff === undefined ? value : `${incoming.xff}, ${value}`;
      break;
    case 'x-forwarded-proto':
      incoming.proto ??= value;
      break;
    case 'x-forwarded-host':
      incoming.host ??= value;
      break;
    default:
      incoming.forwarded = incoming.forwarded === undefined ? value : `${incoming.forwarded}, ${value}`;
  }
  return incoming;
}
