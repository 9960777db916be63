/**
 * Writes stored responses to the client: full answers (the hot path: precomputed headers, the
 * body's buffers written as they are), HEAD, 304 and 412 for conditional requests (RFC 9110
 * §13.2.2), and 206/416 for a byte range of a stored 200 (RFC 9110 §14).
 */
import { pipeline, type Readable } from 'node:stream';
import type { Exchange } from '../core/exchange.ts';
import { GatehouseError } from '../core/errors.ts';
import { pushResponseFields, responseFieldLines } from '../core/response-fields.ts';
import { sendError } from '../listeners/respond.ts';
import type { Finish } from '../middleware/pipeline.ts';
import { writeSerializedHead, type SerializedHead } from '../listeners/serialized-head.ts';
import { bodiless, type CachedEntry } from './entry.ts';
import { sliceChunks } from './memory-store.ts';
import { currentAge, evaluateConditionals, first, hasConditionals, ifRangeMatches, parseRange, type HeaderMap, type Validators } from './policy.ts';

/**
 * Answers the request from `entry` with the given Cache-Status. True when answered (synchronously
 * for bodies in memory); false, or a promise of false, when the body is gone (a disk entry evicted
 * meanwhile) and nothing was written: the caller then goes upstream.
 */
export function serveEntry(ex: Exchange, entry: CachedEntry, cacheStatus: string, now: number, finish: Finish): boolean | Promise<boolean> {
  const headers = ex.req.headers;
  const age = String(Math.floor(currentAge(entry, now)));
  if (entry.status >= 200 && entry.status < 300 && hasConditionals(headers)) {
    const outcome = evaluateConditionals(headers, entry.status, entry.validators);
    if (outcome !== 'none') {
      answerCondition(ex, outcome, entry, age, cacheStatus);
      finish(ex);
      return true;
    }
  }
  const size = entry.size;
  if (headers.range !== undefined && entry.status === 200 && ex.info.method === 'GET' && ifRangeMatches(first(headers['if-range']), entry.validators)) {
    const range = parseRange(headers.range, size);
    if (range === 'unsatisfiable') {
      const head = ['content-range', `bytes */${size}`, 'content-length', '0', 'cache-status', cacheStatus];
      ex.status = 416;
      ex.res.writeHead(416, pushResponseFields(ex, head, false));
      ex.res.end();
      finish(ex);
      return true;
    }
    if (range !== null) {
      const head = pickFields(entry.head, (name) => name !== 'content-length');
      head.push('content-range', `bytes ${range.start}-${range.end}/${size}`, 'content-length', String(range.end - range.start + 1));
      head.push('age', age, 'cache-status', cacheStatus);
      return writeBody(ex, entry, 206, head, range.start, range.end, finish);
    }
  }
  // Fields set on the response before (a rate limit's) are replaced by stored ones of the same name
  // only through writeHead with the whole list.
  // node:http2 has no serialised head to hand over: HTTP/2 hits go through writeHead.
  const serialized = !ex.h2 && ex.res.getHeaderNames().length === 0 ? entry.serialized : null;
  const withAge = serialized?.withAge(age, cacheStatus) ?? null;
  const lines = withAge === null ? null : withAge + responseFieldLines(ex, entry.hasHsts);
  if (serialized === null || lines === null) return writeBody(ex, entry, entry.status, [...entry.head, 'age', age, 'cache-status', cacheStatus], 0, size - 1, finish);
  const contentLength = bodiless(entry.status) ? null : String(size);
  return writeBody(ex, entry, entry.status, { serialized, lines, contentLength }, 0, size - 1, finish);
}

/** A head as a flat field list, or serialised lines (the stored head's, with Age and Cache-Status) and the Content-Length. */
type AnswerHead = string[] | { readonly serialized: SerializedHead; readonly lines: string; readonly contentLength: string | null };

/** `hasHsts`: the stored head has its own Strict-Transport-Security (CachedEntry.hasHsts). */
function writeAnswerHead(ex: Exchange, status: number, head: AnswerHead, hasHsts: boolean): void {
  if (Array.isArray(head)) ex.res.writeHead(status, pushResponseFields(ex, head, hasHsts));
  else writeSerializedHead(ex.res, status, head.serialized, head.lines, head.contentLength);
}

function writeBody(
  ex: Exchange,
  entry: CachedEntry,
  status: number,
  head: AnswerHead,
  start: number,
  end: number,
  finish: Finish,
): boolean | Promise<boolean> {
  const res = ex.res;
  const length = end - start + 1;
  const body = entry.body;
  if (length <= 0 || ex.info.method === 'HEAD' || bodiless(status)) {
    ex.status = status;
    writeAnswerHead(ex, status, head, entry.hasHsts);
    res.end();
    finish(ex);
    return true;
  }
  const whole = start === 0 && length === entry.size;
  if (whole && body.text !== null) {
    ex.status = status;
    ex.bytes = length;
    writeAnswerHead(ex, status, head, entry.hasHsts);
    res.end(body.text, 'latin1');
    finish(ex);
    return true;
  }
  // Read once: a text body makes its buffer on each read.
  const chunks = body.chunks;
  if (chunks !== null) {
    ex.status = status;
    ex.bytes = length;
    writeAnswerHead(ex, status, head, entry.hasHsts);
    const parts = whole ? chunks : sliceChunks(chunks, start, end);
    if (parts.length === 1) res.end(parts[0]);
    else {
      // The buffers are the store's: queued by reference, never copied.
      res.cork();
      for (const part of parts) res.write(part);
      res.end();
      res.uncork();
    }
    finish(ex);
    return true;
  }
  return body.open(start, end).then(
    (stream) => {
      streamBody(ex, status, head, entry.hasHsts, stream, length, finish);
      return true;
    },
    () => false,
  );
}

function streamBody(ex: Exchange, status: number, head: AnswerHead, hasHsts: boolean, stream: Readable, length: number, finish: Finish): void {
  const res = ex.res;
  if (res.destroyed) {
    stream.destroy();
    ex.status = 499;
    finish(ex);
    return;
  }
  ex.status = status;
  writeAnswerHead(ex, status, head, hasHsts);
  stream.on('data', (chunk: Buffer) => {
    ex.bytes += chunk.length;
  });
  pipeline(stream, res, (error) => {
    if (error) sendError(ex, res.destroyed ? new GatehouseError('CLIENT_CLOSED') : new GatehouseError('INTERNAL', error.message, { cause: error }));
    else if (ex.bytes !== length) sendError(ex, new GatehouseError('INTERNAL', 'stored body shorter than its length'));
    finish(ex);
  });
}

/** 304 or 412 (RFC 9110 §15.4.5, §15.5.13) from a stored head. */
function answerCondition(ex: Exchange, outcome: 'not-modified' | 'precondition-failed', entry: CachedEntry, age: string, cacheStatus: string): void {
  const res = ex.res;
  if (outcome === 'not-modified') {
    const notModified = pickFields(entry.head, (name) => NOT_MODIFIED_FIELDS.has(name));
    notModified.push('age', age, 'cache-status', cacheStatus);
    ex.status = 304;
    res.writeHead(304, pushResponseFields(ex, notModified, entry.hasHsts));
    res.end();
    return;
  }
  ex.status = 412;
  res.writeHead(412, pushResponseFields(ex, ['content-length', '0', 'cache-status', cacheStatus], false));
  res.end();
}

/**
 * RFC 9110 §15.4.5: the fields a 304 carries (those a 200 would have had that guide caches), and
 * the backend's Strict-Transport-Security: it is about the host, not the representation, and a
 * browser reads it on any answer (RFC 6797 §8.1), so the 304 keeps what the 200 said (e.g.
 * max-age=0) rather than getting the listener's `hsts` instead.
 */
const NOT_MODIFIED_FIELDS: ReadonlySet<string> = new Set(['cache-control', 'content-location', 'date', 'etag', 'expires', 'vary', 'last-modified', 'strict-transport-security']);

/** The fields of a flat head whose names `keep` accepts, as a new flat list. */
function pickFields(head: readonly string[], keep: (name: string) => boolean): string[] {
  const out: string[] = [];
  for (let i = 0; i < head.length; i += 2) if (keep(head[i] as string)) out.push(head[i] as string, head[i + 1] as string);
  return out;
}

/**
 * Answers the client's conditional request against a response that just arrived (a miss whose
 * conditionals were removed upstream so that the whole response could be stored). True when a
 * 304 or 412 was sent.
 */
export function answerFreshConditional(ex: Exchange, status: number, headers: Record<string, string | string[]>, validators: Validators): boolean {
  const outcome = evaluateConditionals(ex.req.headers as HeaderMap, status, validators);
  if (outcome === 'none') return false;
  if (outcome === 'precondition-failed') {
    const cacheStatus = headers['cache-status'];
    ex.status = 412;
    ex.res.writeHead(412, pushResponseFields(ex, ['content-length', '0', ...(cacheStatus === undefined ? [] : ['cache-status', String(cacheStatus)])], false));
    ex.res.end();
    return true;
  }
  const flat: string[] = [];
  for (const name in headers) {
    const value = headers[name];
    if (value === undefined) continue;
    if (name === 'cache-status' || NOT_MODIFIED_FIELDS.has(name)) for (const v of Array.isArray(value) ? value : [value]) flat.push(name, v);
  }
  ex.status = 304;
  ex.res.writeHead(304, pushResponseFields(ex, flat, headers['strict-transport-security'] !== undefined));
  ex.res.end();
  return true;
}
