/**
 * How many CPUs this process may use, for `workers: auto`: the affinity mask (taskset, cpusets:
 * os.availableParallelism) and the cgroup's CPU quota (a container limited to 2 CPUs on a
 * 64-core host), whichever is smaller. Docker and Kubernetes set the quota, not the mask.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

export function usableCpus(): number {
  const quota = cgroupQuota();
  const byMask = availableParallelism();
  return Math.max(1, quota === null ? byMask : Math.min(byMask, Math.ceil(quota)));
}

/** The cgroup v2 `cpu.max` (or v1 cfs quota) as CPUs; null when unlimited or unknown. */
export function cgroupQuota(): number | null {
  const v2 = readText('/sys/fs/cgroup/cpu.max');
  if (v2 !== null) return parseCpuMax(v2);
  const quota = readText('/sys/fs/cgroup/cpu/cpu.cfs_quota_us');
  const period = readText('/sys/fs/cgroup/cpu/cpu.cfs_period_us');
  if (quota === null || period === null) return null;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : null;
}

/** "max 100000" is unlimited; "200000 100000" is 2 CPUs. */
export function parseCpuMax(text: string): number | null {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max') return null;
  const q = Number(quota);
  const p = Number(period ?? '100000');
  return q > 0 && p > 0 ? q / p : null;
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    // Not on Linux, or no such controller: no quota to honour.
    return null;
  }
}
