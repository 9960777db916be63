/** Compiles an upstream's `health_check` into a HealthPolicy; probes are registered by type here. */
import type { HealthCheckConfig } from '../../config/schema.ts';
import type { BackendTls } from '../../config/backend-tls-files.ts';
import { GrpcProbe } from './grpc-probe.ts';
import { Http2Probe } from './http2-probe.ts';
import { HttpProbe, type HttpProbeOptions } from './http-probe.ts';
import type { HealthPolicy, HealthProbe } from './probe.ts';
import { TcpProbe } from './tcp-probe.ts';

/** How the upstream reaches its servers: the checks go the same way. */
export interface ProbeTransport {
  /** TLS settings for https:// servers. */
  readonly tls: BackendTls;
  /** HTTP checks of upstreams with protocol h2 or h2c speak HTTP/2. */
  readonly http2: boolean;
}

/** Probes by `health_check.type`. */
export const PROBES: Readonly<Record<HealthCheckConfig['type'], (config: HealthCheckConfig, transport: ProbeTransport) => HealthProbe>> = {
  http: (config, transport) => {
    const options: HttpProbeOptions = {
      method: config.method,
      path: config.path,
      host: config.host ?? null,
      expectStatus: config.expect_status,
      expectBody: config.expect_body ?? null,
      tls: transport.tls,
    };
    return transport.http2 ? new Http2Probe(options) : new HttpProbe(options);
  },
  tcp: () => new TcpProbe(),
  grpc: (config, transport) => new GrpcProbe({ service: config.service ?? '', host: config.host ?? null, tls: transport.tls }),
};

/** Null when the upstream has no active checks. */
export function compileHealth(config: HealthCheckConfig | undefined, transport: ProbeTransport): HealthPolicy | null {
  if (config === undefined) return null;
  return {
    probe: PROBES[config.type](config, transport),
    intervalMs: config.interval,
    jitter: config.jitter,
    timeoutMs: config.timeout,
    rise: config.rise,
    fall: config.fall,
    // New TLS files, or another protocol, make a new probe too.
    key: `${JSON.stringify(config)}|${transport.tls.id}|${transport.http2}`,
  };
}
