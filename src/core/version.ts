/** Gatehouse's version: the one in package.json (beside src/ and dist/ alike), read once. */
import { readFileSync } from 'node:fs';

let version: string | undefined;

/** The package version, or "unknown" when package.json cannot be read. */
export function packageVersion(): string {
  if (version !== undefined) return version;
  try {
    const manifest: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
    const value = typeof manifest === 'object' && manifest !== null ? (manifest as { version?: unknown }).version : undefined;
    version = typeof value === 'string' ? value : 'unknown';
  } catch {
    version = 'unknown';
  }
  return version;
}
