/**
 * The admin API's bearer token: read once at start from `admin.token_file` or `admin.token_env`,
 * and required (`Authorization: Bearer TOKEN`, compared in constant time) on every endpoint but
 * /healthz once set. The schema makes one mandatory on any address but loopback.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type { AdminConfig } from '../config/admin-schema.ts';
import { ConfigError } from '../core/errors.ts';
import { errorMessage } from '../core/caught.ts';

/** The token's digest (compared digest to digest: equal lengths, nothing learnt from timing); undefined when none is set. */
export type TokenDigest = Buffer | undefined;

/** Reads the configured token; throws a ConfigError saying where, when it is set but missing or empty. */
export async function readToken(admin: AdminConfig, env: NodeJS.ProcessEnv = process.env): Promise<TokenDigest> {
  let token: string | undefined;
  if (admin.token_file !== undefined) {
    try {
      token = (await readFile(admin.token_file, 'utf8')).split('\n')[0]?.trim();
    } catch (error: unknown) {
      throw new ConfigError(`admin.token_file: cannot read ${admin.token_file}: ${errorMessage(error)}`);
    }
    if (token === undefined || token === '') throw new ConfigError(`admin.token_file: ${admin.token_file} is empty`);
  } else if (admin.token_env !== undefined) {
    token = env[admin.token_env]?.trim();
    if (token === undefined || token === '') throw new ConfigError(`admin.token_env: the environment variable ${admin.token_env} is not set or empty`);
  }
  return token === undefined ? undefined : digest(token);
}

/** Whether `req` may use the API: no token is set, or it carries the token. */
export function authorized(req: IncomingMessage, token: TokenDigest): boolean {
  if (token === undefined) return true;
  const header = req.headers.authorization;
  const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match === null) return false;
  return timingSafeEqual(digest(match[1] as string), token);
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
