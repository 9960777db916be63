/**
 * What every request meets before routing, the same for plain requests and both kinds of
 * WebSocket handshake (HTTP/1.1 Upgrade, HTTP/2 extended CONNECT): HSTS, Gatehouse's own
 * refusals, ACME challenges, the per-request part of protection and the redirect to https.
 *
 * The protection part runs only when something is configured (`protection.screen`) or someone is
 * banned: the client's address behind a trusted proxy, the global access rules where the
 * connection guard could not decide at accept, and bans.
 */
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError, type ErrorCode } from '../core/errors.ts';
import { clientFromForwardedFor } from '../middleware/client-address.ts';
import { clientKey } from '../middleware/ip-filter/ip-address.ts';
import type { ProtectionPolicy } from '../middleware/protection.ts';
import type { ConnectionState } from './connection-guard.ts';
import type { ListenerContext } from './dispatch.ts';
import { httpsRedirectTarget, type HttpsPolicy } from './https-policy.ts';
import { sendError, sendSimple } from './respond.ts';
import type { Http01Challenges } from './tls/acme/http-01.ts';

/**
 * The steps before routing, in order (the client behind a trusted proxy first, for the access log
 * of a refusal); `rejected` is what the request checks said. True when the request may be routed;
 * otherwise it has been answered (the caller finishes it). One function for the three entries, so
 * that a step added here holds for tunnels too. No closure or allocation of its own: it is on
 * dispatch's hot path.
 */
export function admit(ctx: ListenerContext, ex: Exchange, conn: ConnectionState | undefined, rejected: ErrorCode | null): boolean {
  const protection = ex.snapshot.protection;
  if (protection.resolveClient) resolveClient(ex, conn, protection);
  const https = ctx.https;
  // RFC 6797 §7.1: on every answer over TLS, refusals included (null on plain listeners). Added
  // where each head is written (core/response-fields.ts), not set on the response here.
  ex.hsts = https.hsts;
  if (rejected !== null) {
    rejectRequest(ex, rejected);
    return false;
  }
  // ACME validation (RFC 8555 §8.3) comes before bans and routes: the CA's requests must get through.
  const challenges = ctx.challenges;
  if (challenges !== null && challenges.pending > 0 && answerChallenge(ex, challenges)) return false;
  if ((protection.screen || protection.state.bans.any) && !screenRequest(ex, conn, protection)) return false;
  return https.redirectPort === null || !redirectToHttps(ex, https);
}

/** Sets `ex.client` from X-Forwarded-For when the peer is a trusted proxy and a rule needs the client. */
function resolveClient(ex: Exchange, conn: ConnectionState | undefined, policy: ProtectionPolicy): void {
  const trusted = policy.trusted;
  if (trusted === null) return;
  if (conn !== undefined ? !conn.forwarded : !trusted.has(ex.peer)) return;
  const xff = ex.req.headers['x-forwarded-for'];
  ex.client = clientFromForwardedFor(Array.isArray(xff) ? xff.join(', ') : xff, ex.peer, trusted);
}

/** True when the request may go on; otherwise it has been answered (the caller finishes it). */
function screenRequest(ex: Exchange, conn: ConnectionState | undefined, policy: ProtectionPolicy): boolean {
  const state = policy.state;
  const forwarded = conn !== undefined ? conn.forwarded : ex.client !== ex.peer;
  if (conn?.denied === true) return forbid(ex, policy, true);
  const access = policy.access;
  // A connection the guard admitted is checked again only after the rules changed.
  if (access !== null && (conn === undefined || forwarded || conn.checkedGeneration !== state.accessGeneration)) {
    // From a trusted proxy, the connection carries other clients too: it stays open.
    if (!access.allows(ex.client)) return forbid(ex, policy, !forwarded);
    if (conn !== undefined && !forwarded) conn.checkedGeneration = state.accessGeneration;
  }
  if (state.bans.any) {
    const left = state.bans.remaining(clientKey(ex.client, policy.v6Prefix));
    if (left > 0) {
      state.counters.banned_requests++;
      if (!forwarded) ex.res.shouldKeepAlive = false;
      sendError(ex, new GatehouseError('TOO_MANY_REQUESTS'), { 'retry-after': String(Math.ceil(left / 1000)) });
      return false;
    }
  }
  return true;
}

function forbid(ex: Exchange, policy: ProtectionPolicy, close: boolean): boolean {
  policy.state.counters.denied_requests++;
  if (close) ex.res.shouldKeepAlive = false;
  sendError(ex, new GatehouseError('FORBIDDEN'));
  return false;
}

/** A request refused by the request checks: answered, and the connection closed (its framing cannot be trusted). */
function rejectRequest(ex: Exchange, code: ErrorCode): void {
  ex.snapshot.protection.state.counters.rejected_requests++;
  ex.res.shouldKeepAlive = false;
  sendError(ex, new GatehouseError(code));
}

/** Answers an HTTP-01 challenge request with its key authorization; false when it is not one. */
function answerChallenge(ex: Exchange, challenges: Http01Challenges): boolean {
  const keyAuthorization = challenges.answer(ex.info.method, ex.info.path);
  if (keyAuthorization === undefined) return false;
  sendSimple(ex, 200, keyAuthorization, { 'content-type': 'application/octet-stream' });
  return true;
}

/** A plain request redirected to https (true: answered). */
function redirectToHttps(ex: Exchange, policy: HttpsPolicy): boolean {
  const target = httpsRedirectTarget(policy, ex.info, ex.req.url as string);
  if (target === null) return false;
  sendSimple(ex, 308, '', { location: target });
  return true;
}
