// The proxies under test and how to launch each one.
import { join } from 'node:path';
import { HOST } from './ports.ts';
import { prepareNginx } from './nginx.ts';
import type { ProxyName } from './options.ts';

export interface LaunchContext {
  /** Repository root (cwd of every child). */
  root: string;
  /** Node 24 binary. */
  node: string;
  nginx: string | undefined;
  backendPort: number;
}

export interface Launch {
  command: string;
  args: string[];
  /** Extra log files (besides the child's stderr) worth showing on failure. */
  logFiles: string[];
  cleanup(): void;
}

export interface ProxySpec {
  name: ProxyName;
  describe: string;
  launch(ctx: LaunchContext, port: number): Launch;
}

function nodeScript(ctx: LaunchContext, script: string, extraArgs: string[]): Launch {
  return { command: ctx.node, args: [join(ctx.root, script), ...extraArgs], logFiles: [], cleanup: () => {} };
}

function peerScript(script: string): (ctx: LaunchContext, port: number) => Launch {
  return (ctx, port) =>
    nodeScript(ctx, script, ['--port', String(port), '--target', `http://${HOST}:${ctx.backendPort}`]);
}

export const PROXIES: Record<ProxyName, ProxySpec> = {
  gatehouse: {
    name: 'gatehouse',
    describe: 'node src/cli.ts proxy (defaults, access log to /dev/null)',
    launch: (ctx, port) =>
      nodeScript(ctx, 'src/cli.ts', ['proxy', '--from', `${HOST}:${port}`, '--to', `http://${HOST}:${ctx.backendPort}`]),
  },
  'thin-undici': {
    name: 'thin-undici',
    describe: 'node:http + undici Pool.stream() (ceiling reference)',
    launch: peerScript('bench/peers/thin-undici.ts'),
  },
  'thin-agent': {
    name: 'thin-agent',
    describe: 'node:http + keep-alive http.Agent (transport reference)',
    launch: peerScript('bench/peers/thin-agent.ts'),
  },
  'node-http-proxy': {
    name: 'node-http-proxy',
    describe: 'http-proxy with a keep-alive http.Agent',
    launch: peerScript('bench/peers/http-proxy.ts'),
  },
  'fastify-http-proxy': {
    name: 'fastify-http-proxy',
    describe: 'fastify + @fastify/http-proxy, logger off',
    launch: peerScript('bench/peers/fastify-proxy.ts'),
  },
  nginx: {
    name: 'nginx',
    describe: 'nginx, 1 worker, upstream keepalive 64',
    launch: (ctx, port) => {
      if (ctx.nginx === undefined) throw new Error('nginx not found');
      const setup = prepareNginx(port, ctx.backendPort);
      return { command: ctx.nginx, args: setup.args, logFiles: [setup.errorLog], cleanup: setup.cleanup };
    },
  },
};
