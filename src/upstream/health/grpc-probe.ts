/**
 * health_check type grpc: the standard gRPC health check (grpc.health.v1.Health/Check, as
 * grpc-health-probe and Envoy's gRPC health checker send it) over a new HTTP/2 connection. The
 * server passes when the call ends with grpc-status 0 and the answer says SERVING.
 *
 * The two messages are tiny protobufs, written and read here by hand:
 *   HealthCheckRequest  { string service = 1; }
 *   HealthCheckResponse { ServingStatus status = 1; }  UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3
 */
import { constants, type IncomingHttpHeaders } from 'node:http2';
import type { BackendTls } from '../../config/backend-tls-files.ts';
import { checkOverHttp2, streamFailure } from './http2-probe.ts';
import type { HealthProbe, ProbeOutcome, ProbeTarget } from './probe.ts';

const PATH = '/grpc.health.v1.Health/Check';
/** An answer is a few bytes; anything longer is not a health answer. */
const MAX_BODY = 1024;
const SERVING_STATUS = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN'];

export interface GrpcProbeOptions {
  /** The service asked about; "" for the server as a whole. */
  readonly service: string;
  /** :authority of the check; the server's authority when null. */
  readonly host: string | null;
  readonly tls: BackendTls;
}

export class GrpcProbe implements HealthProbe {
  readonly #options: GrpcProbeOptions;
  /** The request, framed once: it never changes. */
  readonly #request: Buffer;

  constructor(options: GrpcProbeOptions) {
    this.#options = options;
    this.#request = frame(encodeRequest(options.service));
  }

  check(server: ProbeTarget, signal: AbortSignal): Promise<ProbeOutcome> {
    const options = this.#options;
    const request = this.#request;
    return checkOverHttp2(server, options.tls, signal, (session, settle) => {
      const stream = session.request({
        [constants.HTTP2_HEADER_METHOD]: 'POST',
        [constants.HTTP2_HEADER_PATH]: PATH,
        [constants.HTTP2_HEADER_AUTHORITY]: options.host ?? server.authority,
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': 'gatehouse-health-check',
      });
      stream.on('error', (error: Error) => settle({ ok: false, detail: streamFailure(error) }));
      let body = Buffer.alloc(0);
      let head: IncomingHttpHeaders = {};
      stream.on('response', (headers) => {
        const status = Number(headers[constants.HTTP2_HEADER_STATUS] ?? 0);
        if (status !== 200) settle({ ok: false, detail: `status ${status} not expected` });
        head = headers;
      });
      stream.on('data', (chunk: Buffer) => {
        body = Buffer.concat([body, chunk]);
        if (body.length > MAX_BODY) settle({ ok: false, detail: 'answer too long for a health check' });
      });
      // Trailers, or a Trailers-Only answer (the status in the response head).
      stream.on('trailers', (trailers) => settle(outcomeOf(trailers, body)));
      stream.on('end', () => settle(outcomeOf(head, body)));
      stream.end(request);
    });
  }
}

function outcomeOf(fields: IncomingHttpHeaders, body: Buffer): ProbeOutcome {
  const status = fields['grpc-status'];
  if (status === undefined) return { ok: false, detail: 'no grpc-status' };
  if (status !== '0') {
    const message = fields['grpc-message'];
    return { ok: false, detail: `grpc-status ${String(status)}${typeof message === 'string' && message !== '' ? ` (${percentDecoded(message)})` : ''}` };
  }
  const serving = decodeResponse(body);
  if (serving === undefined) return { ok: false, detail: 'not a health check answer' };
  const name = SERVING_STATUS[serving] ?? `status ${serving}`;
  return { ok: serving === 1, detail: name };
}

/** grpc-message is percent-encoded; a malformed one is shown as it came (a throw here would escape the check). */
function percentDecoded(message: string): string {
  try {
    return decodeURIComponent(message);
  } catch {
    return message;
  }
}

/** HealthCheckRequest: field 1 (service), length-delimited, left out when empty. */
function encodeRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0);
  const bytes = Buffer.from(service, 'utf8');
  return Buffer.concat([Buffer.from([0x0a]), varint(bytes.length), bytes]);
}

/** The gRPC message frame: not compressed, 4-byte big-endian length, the message. */
function frame(message: Buffer): Buffer {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  message.copy(out, 5);
  return out;
}

/** The ServingStatus of a framed HealthCheckResponse (0 when absent, as proto3 leaves it out); undefined if malformed. */
function decodeResponse(body: Buffer): number | undefined {
  if (body.length < 5 || body[0] !== 0) return undefined;
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) return undefined;
  const message = body.subarray(5, 5 + length);
  let status = 0;
  for (let i = 0; i < message.length; ) {
    const key = readVarint(message, i);
    if (key === undefined) return undefined;
    i = key.next;
    const wireType = key.value & 7;
    if (wireType === 0) {
      const value = readVarint(message, i);
      if (value === undefined) return undefined;
      if (key.value >>> 3 === 1) status = value.value;
      i = value.next;
    } else if (wireType === 2) {
      const size = readVarint(message, i);
      if (size === undefined) return undefined;
      i = size.next + size.value;
    } else return undefined;
  }
  return status;
}

function readVarint(bytes: Buffer, start: number): { value: number; next: number } | undefined {
  let value = 0;
  for (let i = start, shift = 0; i < bytes.length && shift < 35; i++, shift += 7) {
    const byte = bytes[i] as number;
    value += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return { value, next: i + 1 };
  }
  return undefined;
}

function varint(value: number): Buffer {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}
