/** Compiles an upstream's `health_check` into a HealthPolicy; probes are registered by type here. */
import type { HealthCheckConfig } from '../../config/schema.ts';
import { HttpProbe } from './http-probe.ts';
import type { HealthPolicy, HealthProbe } from './probe.ts';
import { TcpProbe } from './tcp-probe.ts';

/** Probes by `health_check.type`. */
export const PROBES: Readonly<Record<HealthCheckConfig['type'], (config: HealthCheckConfig) => HealthProbe>> = {
  http: (config) =>
    new HttpProbe({
      method: config.method,
      path: config.path,
      host: config.host ?? null,
      expectStatus: config.expect_status,
      expectBody: config.expect_body ?? null,
    }),
  tcp: () => new TcpProbe(),
};

/** Null when the upstream has no active checks. */
export function compileHealth(config: HealthCheckConfig | undefined): HealthPolicy | null {
  if (config === undefined) return null;
  return {
    probe: PROBES[config.type](config),
    intervalMs: config.interval,
    jitter: config.jitter,
    timeoutMs: config.timeout,
    rise: config.rise,
    fall: config.fall,
    key: JSON.stringify(config),
  };
}
