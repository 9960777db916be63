/**
 * The audit trail of the admin API: every request that changes something (apply, rollback,
 * reload, drain, ban, purge) is one line in the process log, saying who (the client's address,
 * and whether it gave the token) and what (the endpoint, its answer's status and a summary).
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';

/** Who sent `req`: its address, and "(token)" when it authenticated. */
export function clientOf(req: IncomingMessage, withToken: boolean): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  return withToken ? `${address} (token)` : address;
}

/** Requests that only read, even by POST: not audited. */
const READ_ONLY_POSTS = new Set(['/config/validate', '/config/diff', '/explain']);

/** Whether the request can change something (and is audited). */
export function isChange(method: string | undefined, path: string): boolean {
  if (method === 'GET' || method === 'HEAD') return false;
  return !READ_ONLY_POSTS.has(path);
}

/** One audit line. `summary` is what changed (a version and its changes, the ban, the purge count...). */
export function audit(logger: Logger, who: string, endpoint: string, status: number, summary: unknown): void {
  logger.info({ audit: true, who, endpoint, status, ...(summary === undefined ? {} : { summary }) }, 'admin change');
}

/** A change refused for want of the token: worth knowing about (refused reads are not logged). */
export function auditRefused(logger: Logger, who: string, endpoint: string): void {
  logger.warn({ audit: true, who, endpoint, status: 401 }, 'admin change refused: no valid token');
}
