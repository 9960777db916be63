/**
 * Frees the Buffers of forwarded bodies before they add up to a full garbage collection.
 *
 * Every socket read makes a new Buffer whose bytes live outside V8's heap; V8 counts them as
 * external memory, and each time 64 MiB of it has built up since the last full collection it runs
 * one (a mark-compact of the whole heap). Proxying allocates few JavaScript objects per body byte,
 * so the young generation (16-32 MiB once grown) is collected too rarely to free those Buffers
 * first: at 1 GB/s of bodies the process ran ~15 full collections a second, a third or more of its
 * CPU time on 1 MiB responses. So, after every SCAVENGE_EVERY bytes of body forwarded (responses;
 * request bodies as they pass a counting stream, or, below SCAVENGE_EVERY with a Content-Length,
 * their declared length at once: middleware/body-limit.ts), Gatehouse asks V8 for a scavenge (a young-generation collection: it copies only what is still
 * alive, the objects of the requests in flight, well under a millisecond), which frees the Buffers
 * already written out. Measured with alternating runs: no full collection left on 1 MiB responses
 * and the CPU per response about halved; small and medium answers, which reach the mark seldom, pay
 * nothing measurable (docs/benchmarks.md, issue 21).
 *
 * V8's gc() is reachable only from a context made while --expose-gc is on: the flag is on for the
 * moment one is made (once per thread, on first use), so no other code sees gc(). Should that ever
 * fail, nothing is collected and V8 does as it always did.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Body bytes between two scavenges: half of V8's 64 MiB external-memory trigger. */
export const SCAVENGE_EVERY = 32 * 1024 * 1024;

type Collect = (options: { type: 'minor' }) => void;

let bytes = 0;
/** undefined until first needed; null when V8's gc() could not be had. */
let collect: Collect | null | undefined;

/** Counts `n` bytes of body forwarded; past the mark, one scavenge. */
export function noteBodyBytes(n: number): void {
  bytes += n;
  if (bytes < SCAVENGE_EVERY) return;
  bytes = 0;
  // Not ??=: null (no gc() to be had) is an answer too, not asked for again every mark.
  if (collect === undefined) collect = gcFunction();
  collect?.({ type: 'minor' });
}

/**
 * V8's heap growing factor, in percent above 1, that Gatehouse sets when the process was not
 * started with its own `--heap-growing-percent`: 300 makes the old-generation limit four times
 * what a full collection leaves, the most V8 itself picks (its factor ranges 1.1-4).
 */
const HEAP_GROWING_PERCENT = 300;

/**
 * Keeps the old generation's headroom above the young generation's size, so that V8 does not
 * start a full collection after every other scavenge. V8 starts incremental marking as soon as
 * the old generation could not take a whole young generation's promotion; Gatehouse's young
 * generation grows to its 32 MiB cap under load while its old generation is ~23 MiB, and with
 * the factor V8 chose (~2.5) the headroom stayed under the cap: 7-10 full collections a second on
 * 1 MiB bodies, most finished early by the scavenges above (a scavenge asked for during marking
 * ends it with a full collection), and on 10 KiB answers 1-3 a second, each a 5-15 ms pause (the
 * p99). Measured in alternating runs (docs/benchmarks.md, issue 21): full collections 69-87 -> 9-11
 * per 9 s on 1 MiB (CPU per response -24 %), 11-30 -> 2 on 10 KiB (p99 halved), for 10-20 MB more
 * peak RSS. V8 reads the flag at each full collection, so setting it at start-up is enough; it
 * applies to the whole process, worker threads included.
 */
export function keepOldGenerationHeadroom(execArgv: readonly string[] = process.execArgv): void {
  if (execArgv.some((arg) => arg.startsWith('--heap-growing-percent') || arg.startsWith('--heap_growing_percent'))) return;
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}

function gcFunction(): Collect | null {
  v8.setFlagsFromString('--expose-gc');
  try {
    const gc: unknown = vm.runInNewContext('typeof gc === "function" ? gc : null');
    return typeof gc === 'function' ? (gc as Collect) : null;
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
}
