/** The `admin` block: the admin listener's address, its token and how many applied configurations it keeps. */
import { isIP } from 'node:net';
import { z } from 'zod';
import { address, parseHostPort } from './units.ts';

/** Whether `host` (as parseHostPort gives it) reaches this machine only: 127.0.0.0/8, ::1, localhost. */
function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  // An IPv4-mapped loopback address.
  return /^::ffff:127\./i.test(host);
}

/** The `admin` block; an address off loopback needs a token. */
export const adminSchema = z
  .strictObject({
    /** "host:port" of the admin listener; keep it on loopback (any other address needs a token). */
    address,
    /** A file holding the bearer token the admin API requires (its first line; read at start). */
    token_file: z.string().min(1).optional(),
    /** An environment variable holding the bearer token (read at start). */
    token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'is not an environment variable name').optional(),
    /** How many applied configurations the admin API keeps to roll back to. */
    history: z.number().int().min(1).max(1000).default(10),
    /** Serve Prometheus metrics at GET /metrics, and count them on the request path (docs/admin-api.md#metrics). */
    metrics: z.boolean().default(true),
  })
  .superRefine((admin, ctx) => {
    if (admin.token_file !== undefined && admin.token_env !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['token_env'], message: 'give token_file or token_env, not both' });
    }
    const hostPort = parseHostPort(admin.address);
    if (hostPort === undefined || isLoopbackHost(hostPort.host)) return;
    if (admin.token_file === undefined && admin.token_env === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `"${admin.address}" is not a loopback address: set admin.token_file or admin.token_env so that the admin API asks for a token`,
      });
    }
  });

/** The validated `admin` block. */
export type AdminConfig = z.output<typeof adminSchema>;
