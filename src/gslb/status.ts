/** The admin API's view of a gslb block (GET /status): per-region counters, health and round trips. */
import { regionRtt, usable, type Gslb } from './regions.ts';

export function gslbStatus(gslb: Gslb): Record<string, unknown> {
  return {
    mode: gslb.mode,
    ranking: gslb.latency ? 'latency' : 'distance',
    default_region: gslb.defaultRegion.name,
    unknown_location_requests: gslb.unknown,
    database: gslb.database.describe(),
    regions: Object.fromEntries(
      gslb.regions.map((region) => {
        const rtt = regionRtt(region.upstream);
        return [
          region.name,
          {
            upstream: region.upstream.name,
            usable: usable(region.upstream),
            requests: region.counters.requests,
            spilled_in: region.counters.spilled,
            dns_answers: region.counters.dnsAnswers,
            ...(rtt < 1e6 ? { rtt_ms: Math.round(rtt * 1000) / 1000 } : {}),
          },
        ];
      }),
    ),
  };
}
