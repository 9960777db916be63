/**
 * An upstream's `tls` block with its files read and checked (PEM, a key that belongs to its
 * certificate), once when the configuration is loaded and again when a snapshot is compiled. The
 * transport (src/transport/backend-tls.ts) turns the result into `tls.connect` options.
 */
import { createHash, createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { UpstreamTlsConfig } from './upstream-tls-schema.ts';
import { errorMessage } from '../core/caught.ts';
import { PemFileError, readCertificatesFile, readPemFile } from './pem-file.ts';

/** An upstream's TLS settings, files read. */
export interface BackendTls {
  /** PEM CA certificates that replace the system's trusted roots; undefined for the system roots. */
  readonly ca: string | undefined;
  /** PEM client certificate (chain) and its key, presented to servers that ask (mTLS). */
  readonly cert: string | undefined;
  readonly key: string | undefined;
  /** The name sent in SNI and checked against every server's certificate; each URL's host when undefined. */
  readonly servername: string | undefined;
  /** Check the server's certificate chain and name. */
  readonly verify: boolean;
  /** Identifies the settings and the files' contents: pools and health checks are made again when it changes. */
  readonly id: string;
}

/** A file of the `tls` block that cannot be used; `field` is where it is configured. */
export class BackendTlsFileError extends Error {
  readonly field: 'ca' | 'cert' | 'key';

  constructor(field: 'ca' | 'cert' | 'key', message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'BackendTlsFileError';
    this.field = field;
  }
}

/** The settings of an upstream without a `tls` block: the system's roots, names checked. */
export const DEFAULT_BACKEND_TLS: BackendTls = Object.freeze({
  ca: undefined,
  cert: undefined,
  key: undefined,
  servername: undefined,
  verify: true,
  id: 'default',
});

/** Reads and checks the files of a `tls` block; throws a BackendTlsFileError naming the file and what is wrong. */
export function readBackendTls(config: UpstreamTlsConfig | undefined): BackendTls {
  if (config === undefined) return DEFAULT_BACKEND_TLS;
  const ca = config.ca === undefined ? undefined : readAt('ca', readCertificatesFile, config.ca, 'CA certificate');
  let cert: string | undefined;
  let key: string | undefined;
  if (config.cert !== undefined && config.key !== undefined) {
    cert = readAt('cert', readPemFile, config.cert, 'certificate');
    key = readAt('key', readPemFile, config.key, 'key');
    const leaf = parseCertificate('cert', config.cert, cert);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(key);
    } catch (error: unknown) {
      throw new BackendTlsFileError('key', `${config.key}: not a PEM private key (${errorMessage(error)})`, { cause: error });
    }
    if (!leaf.checkPrivateKey(privateKey)) {
      throw new BackendTlsFileError('key', `${config.key}: this key does not belong to the certificate in ${config.cert}`);
    }
  }
  const id = createHash('sha256')
    .update(JSON.stringify([ca ?? null, cert ?? null, key ?? null, config.servername ?? null, config.verify]))
    .digest('hex')
    .slice(0, 16);
  return Object.freeze({ ca, cert, key, servername: config.servername, verify: config.verify, id });
}

function parseCertificate(field: 'ca' | 'cert', path: string, pem: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (error: unknown) {
    throw new BackendTlsFileError(field, `${path}: not a PEM certificate (${errorMessage(error)})`, { cause: error });
  }
}

/** `read(path, what)`, its PemFileError placed at `field`. */
function readAt(field: 'ca' | 'cert' | 'key', read: (path: string, what: string) => string, path: string, what: string): string {
  try {
    return read(path, what);
  } catch (error: unknown) {
    if (!(error instanceof PemFileError)) throw error;
    throw new BackendTlsFileError(field, error.message, { cause: error });
  }
}
