// Load scenarios: which path, how many wrk connections, which request headers.
import type { ScenarioName } from './options.ts';
import { CACHE_BYTES, CACHE_PATH, GZIP_BYTES, GZIP_PATH, LARGE_BYTES, LARGE_PATH, SMALL_BYTES, SMALL_PATH } from './payloads.ts';

export interface Scenario {
  name: ScenarioName;
  label: string;
  path: string;
  /** Body bytes once decoded. */
  bodyBytes: number;
  threads: number;
  connections: number;
  /** Request headers wrk sends ("Name: value"). */
  headers: readonly string[];
  /** The Content-Encoding every answer must have (checked before the run), or null for none. */
  encoding: 'gzip' | null;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  small: { name: 'small', label: 'small (100 B)', path: SMALL_PATH, bodyBytes: SMALL_BYTES, threads: 1, connections: 50, headers: [], encoding: null },
  large: { name: 'large', label: 'large (1 MiB)', path: LARGE_PATH, bodyBytes: LARGE_BYTES, threads: 1, connections: 10, headers: [], encoding: null },
  // Every request after the first is a cache hit: what a cache costs per answer, the backend idle.
  'cache-hit': {
    name: 'cache-hit',
    label: 'cache hit (100 B, max-age=3600)',
    path: CACHE_PATH,
    bodyBytes: CACHE_BYTES,
    threads: 1,
    connections: 50,
    headers: [],
    encoding: null,
  },
  // Uncacheable (no-store) 16 KiB page, compressed on every request at gzip level 5.
  gzip: {
    name: 'gzip',
    label: 'gzip (16 KiB text/html, no-store)',
    path: GZIP_PATH,
    bodyBytes: GZIP_BYTES,
    threads: 1,
    connections: 50,
    headers: ['Accept-Encoding: gzip'],
    encoding: 'gzip',
  },
};

/** Every scenario. */
export const SCENARIO_NAMES_ALL: readonly ScenarioName[] = ['small', 'large', 'cache-hit', 'gzip'];

/** The plain forwarding scenarios, which every proxy runs; the others need a cache or compression. */
export const PLAIN_SCENARIOS: readonly ScenarioName[] = ['small', 'large'];

/** gzip level every proxy is configured with in the gzip scenario. */
export const GZIP_LEVEL = 5;

/** Warm-up load before each measured run (results discarded). */
export const WARMUP_SECONDS = 2;
