/** Compiles an upstream's `health_check` into a HealthPolicy; probes are registered by type here. */
import type { HealthCheckConfig } from '../../config/schema.ts';
import type { BackendTls } from '../../transport/backend-tls.ts';
import { HttpProbe } from './http-probe.ts';
import type { HealthPolicy, HealthProbe } from './probe.ts';
import { TcpProbe } from './tcp-probe.ts';

/** Probes by `health_check.type`; `tls` is the upstream's TLS to its https:// servers. */
export const PROBES: Readonly<Record<HealthCheckConfig['type'], (config: HealthCheckConfig, tls: BackendTls) => HealthProbe>> = {
  http: (config, tls) =>
    new HttpProbe({
      method: config.method,
      path: config.path,
      host: config.host ?? null,
      expectStatus: config.expect_status,
      expectBody: config.expect_body ?? null,
      tls,
    }),
  tcp: () => new TcpProbe(),
};

/** Null when the upstream has no active checks. */
export function compileHealth(config: HealthCheckConfig | undefined, tls: BackendTls): HealthPolicy | null {
  if (config === undefined) return null;
  return {
    probe: PROBES[config.type](config, tls),
    intervalMs: config.interval,
    jitter: config.jitter,
    timeoutMs: config.timeout,
    rise: config.rise,
    fall: config.fall,
    // New TLS files make a new probe too.
    key: `${JSON.stringify(config)}|${tls.id}`,
  };
}
