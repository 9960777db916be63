/**
 * The state directory: what Gatehouse makes and keeps between runs (the local CA, ACME accounts
 * and certificates). Everything in it is private to the user Gatehouse runs as: directories are
 * made 0700 and files 0600, since they hold private keys.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

/** Owner-only directories (rwx------). */
export const PRIVATE_DIR_MODE = 0o700;
/** Owner-only files (rw-------). */
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Where state goes when `state_dir` is not set, as Caddy does it on Linux: $XDG_DATA_HOME/gatehouse,
 * else ~/.local/share/gatehouse; ./.gatehouse when there is no home directory.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg !== undefined && xdg !== '') return join(xdg, 'gatehouse');
  let home = '';
  try {
    home = env.HOME ?? homedir();
  } catch {
    // No home directory (a system user without one): the working directory is left.
  }
  return home === '' ? resolve('.gatehouse') : join(home, '.local', 'share', 'gatehouse');
}

/** Makes `dir` and its missing parents, owner-only; an existing one is made owner-only too. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE);
}

/**
 * Writes a file owner-only, atomically (a temporary file renamed over it), so that a reader never
 * sees half a key and a crash leaves the old file whole.
 */
export async function writePrivateFile(path: string, data: string): Promise<void> {
  await ensurePrivateDir(dirname(path));
  const temporary = temporaryName(path);
  try {
    await writeFile(temporary, data, { mode: PRIVATE_FILE_MODE });
    // The mode given to writeFile applies only to a new file; make sure of it either way.
    await chmod(temporary, PRIVATE_FILE_MODE);
    await rename(temporary, path);
  } catch (error: unknown) {
    // A failed write (a full disk, a directory in the way) leaves no half file behind.
    await rm(temporary, { force: true });
    throw error;
  }
}

/**
 * A name beside `path` no other writer picks: worker threads share the pid, and two writes in one
 * millisecond share the time, so a random part keeps them apart.
 */
export function temporaryName(path: string): string {
  return `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
}

/** The file's text, or undefined when it does not exist (other errors are thrown). */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
