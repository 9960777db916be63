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

/**
 * The CPU quota of this process's cgroup as CPUs; null when unlimited or unknown. The cgroup is
 * found in /proc/self/cgroup (a systemd unit with CPUQuota= lives below the root, unlike a
 * container, whose cgroup namespace makes its own the root), and every cgroup above it limits it
 * too, so the smallest quota on the way up counts.
 */
export function cgroupQuota(read: (path: string) => string | null = readText): number | null {
  const membership = read('/proc/self/cgroup') ?? '';
  const v2Path = /^0::(.*)$/m.exec(membership)?.[1];
  const v1Path = /^\d+:(?:[^:]*,)?cpu(?:,[^:]*)?:(.*)$/m.exec(membership)?.[1];
  let smallest: number | null = null;
  const take = (quota: number | null): void => {
    if (quota !== null && (smallest === null || quota < smallest)) smallest = quota;
  };
  for (const dir of upwards('/sys/fs/cgroup', v2Path ?? '/')) {
    const v2 = read(`${dir}/cpu.max`);
    if (v2 !== null) take(parseCpuMax(v2));
  }
  for (const dir of upwards('/sys/fs/cgroup/cpu', v1Path ?? '/')) {
    const quota = read(`${dir}/cpu.cfs_quota_us`);
    const period = read(`${dir}/cpu.cfs_period_us`);
    if (quota === null || period === null) continue;
    const q = Number(quota);
    const p = Number(period);
    take(q > 0 && p > 0 ? q / p : null);
  }
  return smallest;
}

/** `root` + `path`, then each parent up to `root` itself. */
function upwards(root: string, path: string): string[] {
  const parts = path.split('/').filter((part) => part !== '' && part !== '..');
  const dirs: string[] = [];
  for (let depth = parts.length; depth >= 0; depth--) dirs.push([root, ...parts.slice(0, depth)].join('/'));
  return dirs;
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
