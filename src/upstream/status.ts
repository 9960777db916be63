/** The admin API's view of an upstream and its servers (GET /status), and the drain switch. */
import type { Server } from './server.ts';
import type { Upstream } from './upstream.ts';

export function upstreamStatus(upstream: Upstream): Record<string, unknown> {
  const now = performance.now();
  const state = upstream.state;
  const budget = state.budget.windowCounts(now);
  return {
    balance: upstream.balance,
    in_flight: state.inFlight,
    queued: state.queued,
    rejected: state.rejected,
    available: upstream.available.map((s) => s.origin),
    retries: { last_10s: budget.retries, requests_last_10s: budget.requests, total: state.budget.retries },
    servers: upstream.servers.map((s) => serverStatus(s, now)),
  };
}

export function serverStatus(server: Server, now = performance.now()): Record<string, unknown> {
  const state = server.state;
  const check = state.lastCheck;
  const share = state.share(now);
  return {
    url: server.origin,
    weight: server.weight,
    ...(server.backup ? { backup: true } : {}),
    state: state.status,
    in_flight: state.inFlight,
    requests: state.requests,
    failures: state.failures,
    ewma_ms: Math.round(state.ewma * 1000) / 1000,
    ...(state.ejectedUntil !== 0 ? { ejected_for_ms: Math.max(0, Math.round(state.ejectedUntil - now)) } : {}),
    ejections: state.ejections,
    ...(state.onTrial ? { on_trial: true } : {}),
    // While the ramp runs (the balancer then has a reduced weight for the server).
    ...(state.rampStart >= 0 ? { slow_start_share: Math.round(share * 100) / 100 } : {}),
    last_check: check === null ? null : { ok: check.ok, detail: check.detail, ms: check.ms, at: new Date(check.at).toISOString() },
  };
}

/**
 * Finds a server of the upstream by its position ("0"), its host:port, or its URL, for the admin
 * API's drain calls.
 */
export function findServer(upstream: Upstream, ref: string): Server | undefined {
  if (/^\d+$/.test(ref)) return upstream.servers[Number(ref)];
  const wanted = ref.toLowerCase();
  return upstream.servers.find((s) => s.authority.toLowerCase() === wanted || s.origin.toLowerCase() === wanted);
}
