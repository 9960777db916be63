import { z } from 'zod';

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, k: 1024, mb: 1024 ** 2, m: 1024 ** 2, gb: 1024 ** 3, g: 1024 ** 3 };

function parseWithUnits(value: string, units: Record<string, number>): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(value);
  if (!match) return undefined;
  const factor = units[(match[2] ?? '').toLowerCase() || Object.keys(units)[0]!];
  return factor === undefined ? undefined : Math.round(Number(match[1]) * factor);
}

/** A name other parts of the configuration refer to (an upstream, a store, a limit, a gslb block, a region). */
export function nameSchema(what: string): z.ZodString {
  return z.string().regex(/^[A-Za-z0-9_.-]+$/, `${what} names use letters, digits, _ . -`);
}

/** An HTTP token (RFC 9110 §5.6.2): header names, cookie names and the like. */
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export const headerName = z.string().regex(TOKEN, 'is not a valid header name');

/** A duration: a number of milliseconds or a string such as "500ms", "30s", "5m", "1h", "7d" (d: days, w: weeks). Becomes milliseconds. */
export const duration = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const ms = parseWithUnits(value, DURATION_UNITS);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration (use e.g. 500ms, 30s, 5m, 1h, 7d)` });
    return z.NEVER;
  }
  return ms;
});

/** A size: a number of bytes or a string such as "16kb", "10mb", "1gb". Becomes bytes. */
export const size = z.union([z.number().int().nonnegative(), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const bytes = parseWithUnits(value, SIZE_UNITS);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a size (use e.g. 512, 16kb, 10mb, 1gb)` });
    return z.NEVER;
  }
  return bytes;
});

/** "host:port", "[v6]:port" or ":port". */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

export function parseHostPort(value: string): HostPort | undefined {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]*)):(\d{1,5})$/.exec(value);
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port > 65535) return undefined;
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

/** A listen address "host:port" (port 0 picks a free one). */
export const address = z.string().refine((value) => parseHostPort(value) !== undefined, {
  message: 'must be "host:port", "[ipv6]:port" or ":port"',
});

/** "127.0.0.1:8080" or "[::1]:8080": a bound address as configuration writes it. */
export function formatAddress(address: { readonly address: string; readonly port: number; readonly family: string }): string {
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}
