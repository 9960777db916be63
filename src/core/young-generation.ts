/**
 * Keeps V8's young generation at its initial size (two 1 MiB semi-spaces) in a process that
 * serves traffic.
 *
 * Why: every socket read makes a new Buffer whose bytes live outside V8's heap; V8 counts them as
 * external memory, and once 64 MiB of it has built up since the last full collection it runs one
 * (a mark-compact of the whole heap). A young generation grown to its usual 16-32 MiB is
 * collected too rarely to free those buffers first (proxying allocates few JavaScript objects per
 * byte), so at 1 GB/s of bodies the process ran ~15 full collections a second, a third or more of
 * its CPU time on 1 MiB responses. With a small young generation, scavenges (cheap: they copy only
 * what is still alive, the objects of the requests in flight) free the buffers long before they
 * add up. Measured with alternating runs: CPU per 1 MiB response about halved, small responses
 * unchanged (docs/benchmarks.md, issue 21).
 *
 * The sizes are fixed when the heap is made, but the growth factor is read each time V8 would
 * grow the space: set to 1 at start, it stops the growth. Loading Gatehouse's modules has grown the
 * space already (to 16 MiB), so one full collection that reduces memory (V8's "last resort" one, a
 * few milliseconds, once) takes it back to its initial size first; V8's gc() is only reachable
 * through a context made while --expose-gc is on, so the flag is on for that moment only.
 *
 * Left alone when the operator sized the young generation (--max-semi-space-size and the like, on
 * the command line or in NODE_OPTIONS). The flag is process-wide: worker threads get it too.
 */
import v8 from 'node:v8';
import vm from 'node:vm';

type Collect = (options: { type: 'major'; execution: 'sync'; flavor: 'last-resort' }) => void;

/** Stops the young generation from growing, back at its initial size; false when the operator's own setting was kept. */
export function keepYoungGenerationSmall(): boolean {
  const given = [...process.execArgv, process.env['NODE_OPTIONS'] ?? ''].join(' ');
  if (/semi[-_]space/.test(given)) return false;
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--expose-gc');
  try {
    const collect = vm.runInNewContext('gc') as Collect;
    collect({ type: 'major', execution: 'sync', flavor: 'last-resort' });
  } finally {
    v8.setFlagsFromString('--no-expose-gc');
  }
  return true;
}
