/** Admin API helpers: a JSON call with a body and headers, and a proxy started from a configuration file. */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import pino, { type Logger } from 'pino';
import { loadConfigFile } from '../../src/config/load.ts';
import { Gatehouse } from '../../src/gatehouse.ts';
import { Primary } from '../../src/workers/primary.ts';
import { request } from './http.ts';
import { tempDir } from './process.ts';

/** A parsed JSON answer. */
export interface AdminReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  /** As JSON.parse gives it: tests read the fields they expect, and a wrong shape fails their assertions. */
  readonly body: ReturnType<typeof JSON.parse>;
}

/** `method path` on the admin API at `port`, with an optional text body and headers. */
export async function call(port: number, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<AdminReply> {
  const res = await request(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/yaml', ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return { status: res.status, headers: res.headers, body: JSON.parse(res.body) };
}

/** A proxy (one Gatehouse, or a Primary with `workers`) running from a file, with its state in a temporary folder. */
export interface FileProxy {
  readonly file: string;
  readonly stateDir: string;
  readonly proxy: Gatehouse | Primary;
  readonly adminPort: number;
  readonly port: number;
}

/**
 * Writes `text(stateDir)` to a configuration file in a new temporary folder and starts a proxy
 * from it (`workers` > 1: a Primary). The text should set `state_dir` to the folder given.
 */
export async function startFromFile(t: TestContext, text: (stateDir: string) => string, options: { workers?: number; logger?: Logger; dir?: string } = {}): Promise<FileProxy> {
  const dir = options.dir ?? (await tempDir(t));
  const stateDir = join(dir, 'state');
  const file = join(dir, 'gatehouse.yaml');
  if (options.dir === undefined) await writeFile(file, text(stateDir), { mode: 0o640 });
  const config = await loadConfigFile(file);
  const logger = options.logger ?? pino({ level: 'silent' });
  const workers = options.workers ?? 1;
  const proxy = workers > 1 ? await Primary.start(config, { configFile: file, logger, workers }) : await Gatehouse.start(config, { configFile: file, logger });
  t.after(() => proxy.stop(500));
  return { file, stateDir, proxy, adminPort: proxy.adminAddress?.port ?? 0, port: proxy.addresses[0]?.port ?? 0 };
}
