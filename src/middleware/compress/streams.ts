/**
 * Compression and decompression (node:zlib). A small body of known length is collected and
 * compressed in one synchronous call (no thread-pool round trips, no stream, for the common case:
 * a page or a JSON document); anything else streams through zlib as it arrives, and is
 * flushed whenever the input pauses, so that a slow stream (server-sent data, a long page) reaches
 * the client as it is produced rather than when zlib's buffer fills.
 */
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { Encoding } from '../../config/acceleration-schema.ts';
import { WholeBody } from '../pipeline.ts';
import { compressWhole } from './one-call.ts';

/** Bodies of a known length up to this are compressed in one synchronous call. */
export const SYNC_LIMIT = 64 * 1024;

export interface Levels {
  readonly gzip: number;
  readonly br: number;
  readonly zstd: number;
}

type ZlibStream = Transform & { flush(kind?: number, callback?: () => void): void };

/**
 * Bytes into and out of the compressors, for the compression ratio in /metrics. Counters of the
 * process (of the thread, with workers), like its CPU time: they outlive reloads without a key.
 */
export const compressionCounters = { bytesIn: 0, bytesOut: 0 };
type ZlibClass = new (options?: object) => ZlibStream;

/**
 * A zlib stream that flushes when its input pauses: after the chunks that arrived in one turn of
 * the event loop have been written, a flush pushes out what zlib holds.
 */
function flushing(base: ZlibClass, flushKind: number | undefined): ZlibClass {
  return class extends base {
    #scheduled = false;

    override _transform(chunk: Buffer, encoding: BufferEncoding, callback: TransformCallback): void {
      compressionCounters.bytesIn += chunk.length;
      super._transform(chunk, encoding, callback);
      // Flush requests come through here as empty buffers: they schedule nothing.
      if (chunk.length > 0 && !this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => {
          this.#scheduled = false;
          if (!this.writableEnded && !this.destroyed) this.flush(flushKind);
        });
      }
    }

    override push(chunk: unknown, encoding?: BufferEncoding): boolean {
      if (chunk instanceof Uint8Array) compressionCounters.bytesOut += chunk.length;
      return super.push(chunk, encoding);
    }
  };
}

// node:zlib exports its stream classes at run time; @types/node only declares their interfaces.
const classes = zlib as unknown as Record<'Gzip' | 'BrotliCompress' | 'ZstdCompress', ZlibClass>;
const FlushingGzip = flushing(classes.Gzip, zlib.constants.Z_SYNC_FLUSH);
const FlushingBrotli = flushing(classes.BrotliCompress, undefined);
const FlushingZstd = flushing(classes.ZstdCompress, undefined);

function gzipOptions(levels: Levels): zlib.ZlibOptions {
  return { level: levels.gzip };
}

function brotliOptions(levels: Levels, size: number): zlib.BrotliOptions {
  const params: Record<number, number> = {
    [zlib.constants.BROTLI_PARAM_QUALITY]: levels.br,
    [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
  };
  if (size > 0) params[zlib.constants.BROTLI_PARAM_SIZE_HINT] = size;
  return { params };
}

function zstdOptions(levels: Levels, size: number): object {
  const params: Record<number, number> = { [zlib.constants.ZSTD_c_compressionLevel]: levels.zstd };
  return size > 0 ? { params, pledgedSrcSize: size } : { params };
}

/** A stream compressing with `encoding` as the body flows; `size` is the body's declared length, or -1. */
export function createCompressor(encoding: Encoding, levels: Levels, size: number): Transform {
  switch (encoding) {
    case 'gzip':
      return new FlushingGzip(gzipOptions(levels));
    case 'br':
      return new FlushingBrotli(brotliOptions(levels, size));
    case 'zstd':
      return new FlushingZstd(zstdOptions(levels, size));
    default:
      return encoding satisfies never;
  }
}

/** Compresses a small body of known length in one synchronous call (one instance per encoding and route). */
export class WholeCompressor extends WholeBody {
  readonly limit = SYNC_LIMIT;
  readonly #encoding: Encoding;
  readonly #levels: Levels;

  constructor(encoding: Encoding, levels: Levels) {
    super();
    this.#encoding = encoding;
    this.#levels = levels;
  }

  rewrite(body: Buffer): Buffer {
    const output = compressSync(this.#encoding, body, this.#levels);
    compressionCounters.bytesIn += body.length;
    compressionCounters.bytesOut += output.length;
    return output;
  }
}

/** `input` compressed whole (brotli gets its length as the size hint). */
function compressSync(encoding: Encoding, input: Buffer, levels: Levels): Buffer {
  switch (encoding) {
    case 'gzip':
      return compressWhole('gzip', input, levels.gzip);
    case 'br':
      return zlib.brotliCompressSync(input, brotliOptions(levels, input.length));
    case 'zstd':
      return compressWhole('zstd', input, levels.zstd);
    default:
      return encoding satisfies never;
  }
}

/** Codings Gatehouse can decode for clients that do not accept them. */
export const DECODABLE: ReadonlySet<string> = new Set(['gzip', 'x-gzip', 'deflate', 'br', 'zstd']);

/** A stream decoding `coding` (one of DECODABLE). */
export function createDecompressor(coding: string): Transform {
  switch (coding) {
    case 'gzip':
    case 'x-gzip':
      return zlib.createGunzip();
    case 'deflate':
      return zlib.createInflate();
    case 'br':
      return zlib.createBrotliDecompress();
    default:
      return zlib.createZstdDecompress();
  }
}
