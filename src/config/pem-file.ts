/**
 * PEM files named by the configuration (certificates, keys, CA bundles), read once when it is
 * loaded or compiled, with the errors worded alike for all: the file first, then what is wrong.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { errorCodeOrMessage, errorMessage } from '../core/caught.ts';

/** A PEM file that cannot be used; the message names the file and what is wrong with it. */
export class PemFileError extends Error {
  /** Why the file could not be read (its error code: ENOENT, EACCES...); undefined when it was read but is not PEM. */
  readonly readFailure: string | undefined;

  constructor(message: string, readFailure: string | undefined, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PemFileError';
    this.readFailure = readFailure;
  }
}

/** Reads a PEM file; throws a PemFileError: "PATH: cannot read the WHAT file (ENOENT)" or "PATH: not a PEM WHAT file". */
export function readPemFile(path: string, what: string): string {
  const text = readText(path, what);
  if (!text.includes('-----BEGIN ')) throw new PemFileError(`${path}: not a PEM ${what} file`, undefined);
  return text;
}

/**
 * Reads a file of PEM certificates (a CA bundle) and parses each; throws a PemFileError:
 * unreadable, "PATH: holds no PEM certificate (-----BEGIN CERTIFICATE-----)", "PATH: not a PEM certificate (why)".
 */
export function readCertificatesFile(path: string, what: string): string {
  const text = readText(path, what);
  const blocks = certificateBlocks(text);
  if (blocks.length === 0) throw new PemFileError(`${path}: holds no PEM certificate (-----BEGIN CERTIFICATE-----)`, undefined);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (error: unknown) {
      throw new PemFileError(`${path}: not a PEM certificate (${errorMessage(error)})`, undefined, { cause: error });
    }
  }
  return text;
}

/** The PEM certificate blocks of a file's text (a CA bundle), in order. */
function certificateBlocks(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error: unknown) {
    const failure = errorCodeOrMessage(error);
    throw new PemFileError(`${path}: cannot read the ${what} file (${failure})`, failure, { cause: error });
  }
}
