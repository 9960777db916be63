import { errorMessage } from './caught.ts';

/** Where a failure came from: the client, a backend, Gatehouse itself, or its configuration. */
export type ErrorSource = 'downstream' | 'upstream' | 'internal' | 'config';

/** One entry of the error catalog: the HTTP answer a failure turns into. */
export interface ErrorKind {
  readonly status: number;
  readonly source: ErrorSource;
  /**
   * The `retries.retry_on` condition that covers this failure, or null when it is never retried.
   * Only `connect_failure` is retried for every method (nothing reached the backend); the others
   * may have reached the backend, so they are retried for idempotent methods only (RFC 9110 §9.2.2).
   */
  readonly retryOn: RetryCondition | null;
  /** Counts against the server for passive health checking (outlier detection). */
  readonly serverFault: boolean;
  /** The small public body; never names a backend. */
  readonly message: string;
}

/** Transport failures a retry policy can name (`retries.retry_on`); statuses are named by number. */
export type RetryCondition = 'connect_failure' | 'reset' | 'timeout';

/**
 * The catalog of stable error codes. Every failure the request path can meet maps to one entry,
 * which fixes its status, its source and whether a retry is safe.
 */
export const ERRORS = {
  NO_ROUTE: { status: 404, source: 'downstream', retryOn: null, serverFault: false, message: 'Not Found' },
  BODY_TOO_LARGE: { status: 413, source: 'downstream', retryOn: null, serverFault: false, message: 'Payload Too Large' },
  BAD_REQUEST: { status: 400, source: 'downstream', retryOn: null, serverFault: false, message: 'Bad Request' },
  CLIENT_CLOSED: { status: 499, source: 'downstream', retryOn: null, serverFault: false, message: 'Client Closed Request' },
  /** No server of the upstream can take requests (all down, ejected or draining). */
  NO_SERVER: { status: 503, source: 'upstream', retryOn: null, serverFault: false, message: 'Service Unavailable' },
  /** Circuit breaker: the upstream's in-flight limit and queue are full, or every server is at its own limit. */
  OVERLOADED: { status: 503, source: 'upstream', retryOn: null, serverFault: false, message: 'Service Unavailable' },
  /** Waited in the upstream's queue longer than circuit_breaker.queue_timeout. */
  QUEUE_TIMEOUT: { status: 503, source: 'upstream', retryOn: null, serverFault: false, message: 'Service Unavailable' },
  CONNECT_REFUSED: { status: 502, source: 'upstream', retryOn: 'connect_failure', serverFault: true, message: 'Bad Gateway' },
  CONNECT_TIMEOUT: { status: 504, source: 'upstream', retryOn: 'connect_failure', serverFault: true, message: 'Gateway Timeout' },
  /**
   * The server's certificate failed verification (unknown CA, wrong name, expired). As nginx and
   * Envoy count it, a connect failure: nothing was sent, so another server may be tried.
   */
  TLS_CERT_INVALID: { status: 502, source: 'upstream', retryOn: 'connect_failure', serverFault: true, message: 'Bad Gateway' },
  /** The TLS handshake with the server failed: no common version, our client certificate refused or missing, not TLS at all. */
  TLS_HANDSHAKE_FAILED: { status: 502, source: 'upstream', retryOn: 'connect_failure', serverFault: true, message: 'Bad Gateway' },
  UPSTREAM_RESET: { status: 502, source: 'upstream', retryOn: 'reset', serverFault: true, message: 'Bad Gateway' },
  HEADERS_TIMEOUT: { status: 504, source: 'upstream', retryOn: 'timeout', serverFault: true, message: 'Gateway Timeout' },
  /** Always after the response head was sent, so never retried in practice. */
  BODY_TIMEOUT: { status: 504, source: 'upstream', retryOn: 'timeout', serverFault: true, message: 'Gateway Timeout' },
  /** A response that is not valid HTTP: treated like a reset for retries. */
  BAD_RESPONSE: { status: 502, source: 'upstream', retryOn: 'reset', serverFault: true, message: 'Bad Gateway' },
  /** Refused by the access rules (global or per route). */
  FORBIDDEN: { status: 403, source: 'downstream', retryOn: null, serverFault: false, message: 'Forbidden' },
  /** A rate limit refused the request, or the client is banned. */
  TOO_MANY_REQUESTS: { status: 429, source: 'downstream', retryOn: null, serverFault: false, message: 'Too Many Requests' },
  /** The request target is longer than limits.max_url_length. */
  URI_TOO_LONG: { status: 414, source: 'downstream', retryOn: null, serverFault: false, message: 'URI Too Long' },
  /** More header lines than limits.max_header_count. */
  HEADERS_TOO_LARGE: { status: 431, source: 'downstream', retryOn: null, serverFault: false, message: 'Request Header Fields Too Large' },
  /** The request body arrived slower than limits.body_min_rate. */
  BODY_TOO_SLOW: { status: 408, source: 'downstream', retryOn: null, serverFault: false, message: 'Request Timeout' },
  INTERNAL: { status: 500, source: 'internal', retryOn: null, serverFault: false, message: 'Internal Server Error' },
} as const satisfies Record<string, ErrorKind>;

export type ErrorCode = keyof typeof ERRORS;

/** A failure on the request path, carrying its catalog code. */
export class GatehouseError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;

  constructor(code: ErrorCode, detail?: string, options?: ErrorOptions) {
    super(detail ?? ERRORS[code].message, options);
    this.name = 'GatehouseError';
    this.code = code;
    this.kind = ERRORS[code];
  }

  get status(): number {
    return this.kind.status;
  }
}

const SYSTEM_CODES: Record<string, ErrorCode> = {
  ECONNREFUSED: 'CONNECT_REFUSED',
  EHOSTUNREACH: 'CONNECT_REFUSED',
  ENETUNREACH: 'CONNECT_REFUSED',
  ENOTFOUND: 'CONNECT_REFUSED',
  EAI_AGAIN: 'CONNECT_REFUSED',
  UND_ERR_CONNECT_TIMEOUT: 'CONNECT_TIMEOUT',
  ETIMEDOUT: 'CONNECT_TIMEOUT',
  UND_ERR_HEADERS_TIMEOUT: 'HEADERS_TIMEOUT',
  UND_ERR_BODY_TIMEOUT: 'BODY_TIMEOUT',
  ECONNRESET: 'UPSTREAM_RESET',
  EPIPE: 'UPSTREAM_RESET',
  UND_ERR_SOCKET: 'UPSTREAM_RESET',
  UND_ERR_CLOSED: 'UPSTREAM_RESET',
  UND_ERR_RES_CONTENT_LENGTH_MISMATCH: 'BAD_RESPONSE',
  HPE_INVALID_CONSTANT: 'BAD_RESPONSE',
  HPE_INVALID_HEADER_TOKEN: 'BAD_RESPONSE',
  HPE_INVALID_CONTENT_LENGTH: 'BAD_RESPONSE',
  HPE_UNEXPECTED_CONTENT_LENGTH: 'BAD_RESPONSE',
  UND_ERR_INFO: 'BAD_RESPONSE',
  UND_ERR_REQ_CONTENT_LENGTH_MISMATCH: 'BAD_REQUEST',
  // OpenSSL's verification results, as node:tls reports them, and Node's own name check.
  UNABLE_TO_GET_ISSUER_CERT: 'TLS_CERT_INVALID',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'TLS_CERT_INVALID',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'TLS_CERT_INVALID',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'TLS_CERT_INVALID',
  SELF_SIGNED_CERT_IN_CHAIN: 'TLS_CERT_INVALID',
  CERT_SIGNATURE_FAILURE: 'TLS_CERT_INVALID',
  CERT_NOT_YET_VALID: 'TLS_CERT_INVALID',
  CERT_HAS_EXPIRED: 'TLS_CERT_INVALID',
  CERT_REVOKED: 'TLS_CERT_INVALID',
  CERT_UNTRUSTED: 'TLS_CERT_INVALID',
  CERT_REJECTED: 'TLS_CERT_INVALID',
  INVALID_CA: 'TLS_CERT_INVALID',
  INVALID_PURPOSE: 'TLS_CERT_INVALID',
  HOSTNAME_MISMATCH: 'TLS_CERT_INVALID',
  ERR_TLS_CERT_ALTNAME_INVALID: 'TLS_CERT_INVALID',
};

/** Maps anything thrown by the transport to a catalog error; unknown failures become 502. */
export function toGatehouseError(error: unknown): GatehouseError {
  if (error instanceof GatehouseError) return error;
  const code = errorCodeOf(error);
  const mapped = code === undefined ? undefined : (SYSTEM_CODES[code] ?? (code.startsWith('ERR_SSL_') ? 'TLS_HANDSHAKE_FAILED' : undefined));
  return new GatehouseError(mapped ?? 'BAD_RESPONSE', errorMessage(error), {
    cause: error,
  });
}

function errorCodeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (code === 'UND_ERR_SOCKET' || code === 'HPE_USER') {
      const causeCode = errorCodeOf((error as { cause?: unknown }).cause);
      if (causeCode !== undefined) return causeCode;
    }
    return code;
  }
  return errorCodeOf((error as { cause?: unknown }).cause);
}

/** One problem of a configuration read from text, located (for the admin API's validate answer). */
export interface LocatedProblem {
  /** 1-based; 0 when the problem has no position (an empty file). */
  readonly line: number;
  readonly column: number;
  /** `routes[2].upstream`; '' for a YAML syntax error. */
  readonly path: string;
  readonly message: string;
}

/** A configuration problem, with where it was found. */
export class ConfigError extends Error {
  /** Each problem on its own, when the configuration came from text; the message has them all as lines. */
  readonly problems: readonly LocatedProblem[];

  constructor(message: string, problems: readonly LocatedProblem[] = []) {
    super(message);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}
