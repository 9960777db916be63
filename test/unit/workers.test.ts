/** Pure parts of the workers: the crash back-off, the CPU quota, the status merge. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cgroupQuota, parseCpuMax } from '../../src/workers/cpus.ts';
import { restartDelay } from '../../src/workers/primary.ts';
import { mergeStatuses } from '../../src/workers/status.ts';

test('a worker that keeps dying is replaced later and later, up to 30 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 8, 20].map(restartDelay), [0, 500, 1000, 2000, 4000, 30_000, 30_000]);
});

test('cgroup cpu.max: "max" is no quota, "200000 100000" is 2 CPUs', () => {
  assert.equal(parseCpuMax('max 100000\n'), null);
  assert.equal(parseCpuMax('200000 100000\n'), 2);
  assert.equal(parseCpuMax('150000 100000'), 1.5);
});

test('cgroup quota: a systemd unit\'s cgroup below the root is read, and the smallest quota on the way up counts', () => {
  const files = (entries: Record<string, string>) => (path: string): string | null => entries[path] ?? null;
  const unit = '0::/system.slice/gatehouse.service\n';
  assert.equal(cgroupQuota(files({ '/proc/self/cgroup': unit, '/sys/fs/cgroup/cpu.max': 'max 100000', '/sys/fs/cgroup/system.slice/gatehouse.service/cpu.max': '300000 100000' })), 3);
  assert.equal(cgroupQuota(files({ '/proc/self/cgroup': unit, '/sys/fs/cgroup/system.slice/cpu.max': '150000 100000', '/sys/fs/cgroup/system.slice/gatehouse.service/cpu.max': 'max 100000' })), 1.5);
  // A container: its namespace makes its cgroup the root.
  assert.equal(cgroupQuota(files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': '200000 100000' })), 2);
  // cgroup v1, cpu and cpuacct mounted together.
  const v1 = { '/proc/self/cgroup': '4:cpu,cpuacct:/docker/abc\n', '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us': '50000', '/sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us': '100000' };
  assert.equal(cgroupQuota(files(v1)), 0.5);
  assert.equal(cgroupQuota(files({})), null, 'nothing readable: no quota');
});

test('statuses merge: counts add up, settings and states once, shared figures once, servers by position', () => {
  const a = { routes: 3, protection: { rate_limited: 2, rate_limit_keys: 10 }, upstreams: { app: { balance: 'round_robin', servers: [{ url: 'u', weight: 2, requests: 5, state: 'up' }] } } };
  const b = { routes: 3, protection: { rate_limited: 1, rate_limit_keys: 10 }, upstreams: { app: { balance: 'round_robin', servers: [{ url: 'u', weight: 2, requests: 7, state: 'up' }] } } };
  assert.deepEqual(mergeStatuses([a, b]), {
    routes: 3,
    protection: { rate_limited: 3, rate_limit_keys: 10 },
    upstreams: { app: { balance: 'round_robin', servers: [{ url: 'u', weight: 2, requests: 12, state: 'up' }] } },
  });
});

test('statuses merge: an ejection told to every worker, and the IP list files every worker reads, are counted once', () => {
  const worker = { protection: { list_files: [{ path: '/etc/deny', entries: 40, reloads: 2, errors: 0 }] }, upstreams: { app: { servers: [{ requests: 3, ejections: 1 }] } } };
  assert.deepEqual(mergeStatuses([worker, worker]), {
    protection: { list_files: [{ path: '/etc/deny', entries: 40, reloads: 2, errors: 0 }] },
    upstreams: { app: { servers: [{ requests: 6, ejections: 1 }] } },
  });
});

test('statuses merge: Redis degraded when any worker is and connected when all are; pids and round trips are not summed', () => {
  const worker = (connected: boolean, degraded: boolean, rtt: number) => ({
    pid: 40,
    redis: { mode: 'standalone', connected, degraded },
    gslb: { global: { regions: { eu: { requests: 2, rtt_ms: rtt } } } },
  });
  assert.deepEqual(mergeStatuses([worker(true, false, 1.5), worker(false, true, 3)]), {
    pid: 40,
    redis: { mode: 'standalone', connected: false, degraded: true },
    gslb: { global: { regions: { eu: { requests: 4, rtt_ms: 3 } } } },
  });
  assert.deepEqual((mergeStatuses([worker(true, false, 1), worker(true, false, 1)]) as { redis: unknown }).redis, { mode: 'standalone', connected: true, degraded: false });
  assert.deepEqual((mergeStatuses([worker(false, true, 1), worker(true, false, 1)]) as { redis: unknown }).redis, { mode: 'standalone', connected: false, degraded: true }, 'the first worker does not decide');
});
