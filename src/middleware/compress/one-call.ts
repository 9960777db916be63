/**
 * Compression of a whole small body in one synchronous call, with the gzip and zstd contexts kept
 * from one call to the next. zlib.gzipSync and zstdCompressSync make a new context every time (a
 * stream object, a native handle, the coder's state allocated and cleared: ~270 KiB for deflate,
 * a few MiB for zstd), which for a 10 KiB page costs about as much as compressing it at gzip level
 * 1, and whose external memory drives V8's garbage collections. Here one context per encoding and
 * level is reset after each body instead (deflateReset, ZSTD_CCtx_reset keep the memory and the
 * parameters): the calls are synchronous, so one context per level is never used twice at once.
 *
 * This drives node:zlib's native handle (`_handle.writeSync`, `_writeState`, `_handle.reset`),
 * which is not public API, as minizlib (npm's tar) does. It is checked once, on first use, by a
 * round trip; should a Node version change it, every call falls back to the public *Sync
 * functions. Brotli is always compressed with brotliCompressSync: resetting its encoder does not
 * restart it cleanly (its output grows from call to call), and it gets each body's size as a hint.
 */
import zlib from 'node:zlib';

/** What node:zlib's native handle offers (not public API; checked by `usable`). */
interface NativeHandle {
  writeSync(flush: number, input: Buffer, inOffset: number, inLength: number, out: Buffer, outOffset: number, outLength: number): void;
  reset(): void;
}

/** A node:zlib stream seen from inside: its handle and the [availOut, availIn] pair writeSync fills in. */
interface Engine {
  readonly _handle: NativeHandle | null;
  readonly _writeState: Uint32Array;
  readonly destroyed: boolean;
  on(event: 'error', listener: (error: Error) => void): unknown;
  close(): void;
}

type Kind = 'gzip' | 'zstd';

/** Output lands here first; each result is copied out at its exact size. */
const scratch = Buffer.allocUnsafe(64 * 1024);

/** Reused contexts by encoding, indexed by level (1–9 for gzip, 1–19 for zstd: the schema's ranges). */
const engines: Record<Kind, (Engine | undefined)[]> = { gzip: [], zstd: [] };

/** null until the first call, then whether node:zlib's handle works as this module expects. */
let handleWorks: boolean | null = null;

function newEngine(kind: Kind, level: number): Engine {
  const stream =
    kind === 'gzip'
      ? zlib.createGzip({ level })
      : zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level } });
  const engine = stream as unknown as Engine;
  // A native error destroys the stream, which then emits 'error': the call throws instead (below).
  engine.on('error', ignore);
  return engine;
}

function ignore(): void {}

function finishFlag(kind: Kind): number {
  return kind === 'gzip' ? zlib.constants.Z_FINISH : zlib.constants.ZSTD_e_end;
}

/** Runs `input` through `engine` to the end of its frame, then resets it for the next body. */
function run(engine: Engine, kind: Kind, input: Buffer): Buffer {
  const handle = engine._handle;
  if (handle === null) throw new Error('compression context closed');
  const state = engine._writeState;
  const flush = finishFlag(kind);
  let inOffset = 0;
  let inLength = input.length;
  let pieces: Buffer[] | null = null;
  let total = 0;
  for (;;) {
    handle.writeSync(flush, input, inOffset, inLength, scratch, 0, scratch.length);
    if (engine.destroyed) throw new Error(`${kind} compression failed`);
    const availOut = state[0] as number;
    const availIn = state[1] as number;
    const produced = scratch.length - availOut;
    const piece = Buffer.allocUnsafe(produced);
    scratch.copy(piece, 0, 0, produced);
    total += produced;
    // Output space left over: the frame is complete.
    if (availOut !== 0) {
      handle.reset();
      if (pieces === null) return piece;
      pieces.push(piece);
      return Buffer.concat(pieces, total);
    }
    (pieces ??= []).push(piece);
    inOffset += inLength - availIn;
    inLength = availIn;
  }
}

/** The public one-call functions: a new context every call. */
function publicCall(kind: Kind, input: Buffer, level: number): Buffer {
  if (kind === 'gzip') return zlib.gzipSync(input, { level });
  return zlib.zstdCompressSync(input, { params: { [zlib.constants.ZSTD_c_compressionLevel]: level }, pledgedSrcSize: input.length });
}

/** True when a reused context compresses a sample (twice) to what decompresses back to it. */
function usable(): boolean {
  try {
    const sample = Buffer.from('gatehouse one-call compression check '.repeat(50));
    for (const kind of ['gzip', 'zstd'] as const) {
      const engine = newEngine(kind, 3);
      try {
        if (typeof engine._handle?.writeSync !== 'function' || typeof engine._handle.reset !== 'function') return false;
        if (!(engine._writeState instanceof Uint32Array)) return false;
        for (let i = 0; i < 2; i++) {
          const out = run(engine, kind, sample);
          const back = kind === 'gzip' ? zlib.gunzipSync(out) : zlib.zstdDecompressSync(out);
          if (!back.equals(sample)) return false;
        }
      } finally {
        // The check's own context: its native memory (a few MiB for zstd) is freed now, not at some later collection.
        engine.close();
      }
    }
    return true;
  } catch {
    // Whatever went wrong, the public functions remain.
    return false;
  }
}

/** `input` compressed as one gzip member or zstd frame at `level`. */
export function compressWhole(kind: Kind, input: Buffer, level: number): Buffer {
  handleWorks ??= usable();
  if (!handleWorks) return publicCall(kind, input, level);
  const byLevel = engines[kind];
  let engine = byLevel[level];
  if (engine === undefined) {
    engine = newEngine(kind, level);
    byLevel[level] = engine;
  }
  try {
    return run(engine, kind, input);
  } catch (error: unknown) {
    // A context that failed is not trusted again.
    byLevel[level] = undefined;
    throw error;
  }
}
