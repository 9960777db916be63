// One scenario on one running proxy: check the answer (and the TLS handshake), warm up, measure.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { busyPercent, groupCpuSeconds, readCoreTimes } from './cpu.ts';
import { runH2load } from './h2load.ts';
import { measureIdleMemory } from './idle-memory.ts';
import type { IdleMemoryRun } from './idle-memory.ts';
import type { LoadResult } from './load-result.ts';
import { expectAnswer } from './probe.ts';
import type { CoreUsage, Outcome } from './report.ts';
import { WARMUP_SECONDS } from './scenarios.ts';
import type { Scenario } from './scenarios.ts';
import type { Service } from './service.ts';
import { checkTlsHandshakes } from './tls-check.ts';
import { LOAD_CORE, PROXY_CORE } from './tools.ts';
import type { Tools } from './tools.ts';
import { runWrk } from './wrk.ts';

/** The tools and the run's duration; node and root as the idle-memory client needs them. */
export interface MeasureContext extends Pick<IdleMemoryRun, 'node' | 'root'> {
  tools: Tools;
  duration: string;
  durationSeconds: number;
}

/** h2load warm-up: a fixed count (runs are count-based, see h2load.ts); the measured count follows its rate. */
const H2_WARMUP_REQUESTS = 10_000;
const H2_MIN_REQUESTS = 10_000;

/**
 * The measured run, with how busy both cores were (the proxy's and the load's; in an unpinned
 * scenario simply cores 0 and 1) and the proxy's own CPU time per request.
 */
async function withCpu(proxyGroup: number, run: () => Promise<LoadResult>): Promise<{ load: LoadResult; cpu: CoreUsage }> {
  const before = readCoreTimes();
  const cpuBefore = groupCpuSeconds(proxyGroup);
  const load = await run();
  const cpuAfter = groupCpuSeconds(proxyGroup);
  const after = readCoreTimes();
  return {
    load,
    cpu: {
      proxyCore: busyPercent(before, after, PROXY_CORE),
      loadCore: busyPercent(before, after, LOAD_CORE),
      proxyCpuUsPerRequest: load.requests > 0 ? ((cpuAfter - cpuBefore) * 1e6) / load.requests : null,
    },
  };
}

function groupOf(proxy: Service): number {
  const group = proxy.child.process.pid;
  if (group === undefined) throw new Error('the proxy has no pid');
  return group;
}

async function measureWrk(ctx: MeasureContext, proxy: Service, url: string, scenario: Scenario): Promise<Outcome> {
  if (ctx.tools.wrk === undefined) throw new Error('wrk not found');
  const base = {
    wrk: ctx.tools.wrk,
    // Unpinned scenarios (multicore): wrk runs wherever the kernel puts its threads.
    taskset: scenario.pinned ? ctx.tools.taskset : undefined,
    core: LOAD_CORE,
    url,
    threads: scenario.threads,
    connections: scenario.connections,
    headers: scenario.headers,
  };
  await runWrk({ ...base, duration: `${WARMUP_SECONDS}s`, durationSeconds: WARMUP_SECONDS });
  const measured = await withCpu(groupOf(proxy), () => runWrk({ ...base, duration: ctx.duration, durationSeconds: ctx.durationSeconds }));
  return { ok: true, tool: 'wrk', ...measured };
}

async function measureH2(ctx: MeasureContext, proxy: Service, url: string, scenario: Scenario): Promise<Outcome> {
  if (ctx.tools.h2load === undefined) throw new Error('h2load not found');
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-h2load-'));
  try {
    const base = {
      h2load: ctx.tools.h2load,
      taskset: ctx.tools.taskset,
      core: LOAD_CORE,
      url,
      connections: scenario.connections,
      streams: scenario.streams,
      logFile: join(dir, 'requests.log'),
    };
    const warmup = await runH2load({ ...base, requests: H2_WARMUP_REQUESTS, timeoutSeconds: 60 });
    // As many requests as the warm-up's rate gets through in --duration, in whole rounds of -c.
    const wanted = Math.max(H2_MIN_REQUESTS, warmup.requestsPerSec * ctx.durationSeconds);
    const requests = Math.ceil(wanted / scenario.connections) * scenario.connections;
    const timeoutSeconds = Math.max(60, 5 * ctx.durationSeconds);
    const measured = await withCpu(groupOf(proxy), () => runH2load({ ...base, requests, timeoutSeconds }));
    return { ok: true, tool: 'h2load', ...measured };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function measureIdle(ctx: MeasureContext, proxy: Service, scenario: Scenario): Promise<Outcome> {
  const memory = await measureIdleMemory({
    node: ctx.node,
    root: ctx.root,
    taskset: ctx.tools.taskset,
    core: LOAD_CORE,
    url: proxy.url(scenario.path),
    connections: scenario.connections,
    proxyGroup: groupOf(proxy),
  });
  return { ok: true, tool: 'idle-client', memory };
}

export async function measure(ctx: MeasureContext, proxy: Service, scenario: Scenario): Promise<Outcome> {
  const url = proxy.url(scenario.path);
  try {
    await expectAnswer(url, scenario.bodyBytes, scenario.headers, scenario.encoding);
    if (scenario.scheme === 'https') await checkTlsHandshakes(url, scenario.fullHandshakes);
    switch (scenario.kind) {
      case 'wrk':
        return await measureWrk(ctx, proxy, url, scenario);
      case 'h2load':
        return await measureH2(ctx, proxy, url, scenario);
      case 'idle-memory':
        return await measureIdle(ctx, proxy, scenario);
    }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
