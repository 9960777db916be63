// Load scenarios: which path, how many wrk connections.
import type { ScenarioName } from './options.ts';
import { LARGE_BYTES, LARGE_PATH, SMALL_BYTES, SMALL_PATH } from './payloads.ts';

export interface Scenario {
  name: ScenarioName;
  label: string;
  path: string;
  bodyBytes: number;
  threads: number;
  connections: number;
}

export const SCENARIOS: Record<ScenarioName, Scenario> = {
  small: { name: 'small', label: 'small (100 B)', path: SMALL_PATH, bodyBytes: SMALL_BYTES, threads: 1, connections: 50 },
  large: { name: 'large', label: 'large (1 MiB)', path: LARGE_PATH, bodyBytes: LARGE_BYTES, threads: 1, connections: 10 },
};

/** Warm-up load before each measured run (results discarded). */
export const WARMUP_SECONDS = 2;
