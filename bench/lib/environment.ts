// Facts about the machine recorded next to the results.
import { spawnSync } from 'node:child_process';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Tools } from './tools.ts';

/** Node 24 binary: ours if we run on Node >= 24, else the `node` devDependency. */
export function nodeBinary(root: string): string {
  const major = Number(process.versions.node.split('.')[0]);
  return major >= 24 ? process.execPath : join(root, 'node_modules', '.bin', 'node');
}

function versionOf(command: string | undefined, args: string[]): string {
  if (command === undefined) return 'missing';
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 5000 });
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] ?? '';
  return text.length > 0 ? text : 'unknown';
}

export function describeEnvironment(tools: Tools, node: string): Record<string, string | number | boolean> {
  const cpuList = cpus();
  return {
    node: versionOf(node, ['--version']),
    nginx: versionOf(tools.nginx, ['-v']),
    varnish: versionOf(tools.varnishd, ['-V']),
    caddy: versionOf(tools.caddy, ['version']),
    wrk: versionOf(tools.wrk, ['-v']),
    h2load: versionOf(tools.h2load, ['--version']),
    openssl: versionOf(tools.openssl, ['version']),
    cpu: cpuList[0]?.model ?? 'unknown',
    cores: cpuList.length,
    pinned: tools.taskset !== undefined,
  };
}
