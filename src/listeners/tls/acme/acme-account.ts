/**
 * One ACME server as Gatehouse uses it (RFC 8555, through acme-client): the account key kept in
 * the state directory, and orders for one name at a time, validated by HTTP-01 challenges that
 * the plain listeners answer. The server's own HTTPS may be trusted through an extra CA file.
 */
import { Agent } from 'node:https';
import { join } from 'node:path';
import { rootCertificates } from 'node:tls';
import acme from 'acme-client';
import { PemFileError, readCertificatesFile } from '../../../config/pem-file.ts';
import { readIfExists, writePrivateFile } from '../../../core/state-dir.ts';
import type { PemPair } from '../local-ca.ts';
import type { Http01Challenges } from './http-01.ts';
import { errorMessage } from '../../../core/caught.ts';

/** How the order's state is polled: quick at first (a validation takes seconds), then slower. */
const POLL = { backoffAttempts: 10, backoffMin: 1000, backoffMax: 30_000 } as const;

/** What an account needs to know. */
export interface AcmeAccountSettings {
  readonly directory: string;
  readonly email?: string | undefined;
  /** A PEM CA file trusted for the directory's HTTPS beside the system's roots. */
  readonly caFile?: string | undefined;
}

/** The folder of one ACME server in the state directory: acme/HOST[-PORT][-PATH]. */
export function acmeDirFor(stateDir: string, directory: string): string {
  const url = new URL(directory);
  const name = `${url.hostname}${url.port === '' ? '' : `-${url.port}`}${url.pathname}`.replace(/[^A-Za-z0-9.-]+/g, '-').replace(/-+$/, '');
  return join(stateDir, 'acme', name);
}

export class AcmeAccount {
  readonly #settings: AcmeAccountSettings;
  readonly #dir: string;
  readonly #challenges: Http01Challenges;
  #client: Promise<acme.Client> | undefined;

  constructor(settings: AcmeAccountSettings, dir: string, challenges: Http01Challenges) {
    this.#settings = settings;
    this.#dir = dir;
    this.#challenges = challenges;
    if (settings.caFile !== undefined) trustFor(settings.directory, readCaFile(settings.caFile));
  }

  /**
   * Orders a certificate for `name`: a new key, an order, the HTTP-01 challenge answered, the
   * certificate chain fetched. Throws with the server's reason when the order fails.
   */
  async order(name: string): Promise<PemPair> {
    const client = await this.#clientOnce();
    const [key, csr] = await acme.crypto.createCsr({ altNames: [name] }, await acme.crypto.createPrivateEcdsaKey());
    const certPem = await client.auto({
      csr,
      ...(this.#settings.email === undefined ? {} : { email: this.#settings.email }),
      // Caddy agrees on the user's behalf too; docs/tls.md says so.
      termsOfServiceAgreed: true,
      challengePriority: ['http-01'],
      // acme-client would fetch the token itself on port 80 first; the CA's check is the one that counts.
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => this.#challenges.add(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => this.#challenges.remove(challenge.token),
    });
    return { certPem, keyPem: key.toString() };
  }

  #clientOnce(): Promise<acme.Client> {
    this.#client ??= this.#makeClient().catch((error: unknown) => {
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  /** The account key is made once and kept: the CA knows the account by it (RFC 8555 §7.3.1). */
  async #makeClient(): Promise<acme.Client> {
    const file = join(this.#dir, 'account.key');
    let accountKey = await readIfExists(file);
    if (accountKey === undefined) {
      accountKey = (await acme.crypto.createPrivateEcdsaKey()).toString();
      await writePrivateFile(file, accountKey);
    }
    return new acme.Client({ directoryUrl: this.#settings.directory, accountKey, ...POLL });
  }
}

/** The CA file's certificates; the errors name the setting first, as acme's others do. */
function readCaFile(path: string): string {
  try {
    return readCertificatesFile(path, 'CA');
  } catch (error: unknown) {
    if (error instanceof PemFileError && error.readFailure !== undefined) throw new Error(`acme.ca_file: cannot read ${path} (${error.readFailure})`, { cause: error });
    throw new Error(`acme.ca_file: ${errorMessage(error)}`, { cause: error });
  }
}

/** HTTPS agents by origin, for ACME servers with a CA file of their own. */
const agents = new Map<string, Agent>();
let intercepting = false;

/** Trusts `caPem` (beside the system's roots) for the requests acme-client makes to `directory`'s origin. */
function trustFor(directory: string, caPem: string): void {
  agents.set(new URL(directory).origin, new Agent({ ca: [...rootCertificates, caPem], keepAlive: true }));
  if (intercepting) return;
  intercepting = true;
  // acme-client makes every request through its one axios instance: pick the agent by origin.
  acme.axios.interceptors.request.use((config) => {
    const origin = config.url === undefined ? undefined : URL.parse(config.url)?.origin;
    const agent = origin === undefined ? undefined : agents.get(origin);
    if (agent !== undefined) config.httpsAgent = agent;
    return config;
  });
}
