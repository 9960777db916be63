#!/usr/bin/env node
// Runs the built CLI when installed as a package, or the TypeScript sources in a checkout.
// Plain JavaScript, run by whatever `node` the user has: an older one hands over to the Node 24
// the project installs (the `node` npm package), or says in one line what to do.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const NEEDED = 24;
const major = Number(process.versions.node.split('.')[0]);

if (major < NEEDED) {
  // Once is enough: should the bundled Node be old too, say so rather than loop.
  const bundled = process.env.GATEHOUSE_REEXEC === undefined ? bundledNode() : undefined;
  if (bundled === undefined) {
    process.stderr.write(
      `gatehouse needs Node.js ${NEEDED} or newer (this is v${process.versions.node}); ` +
        'install it from https://nodejs.org or run `npx -p node@24 gatehouse ...`\n',
    );
    process.exit(1);
  }
  reexec(bundled);
} else {
  const built = new URL('../dist/cli.js', import.meta.url);
  const { runCli } = await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href);
  await runCli(process.argv.slice(2));
}

/** The Node binary of the `node` package, found as Node finds packages, or in the checkout's node_modules. */
function bundledNode() {
  const candidates = [];
  try {
    const pkg = dirname(createRequire(import.meta.url).resolve('node/package.json'));
    candidates.push(join(pkg, 'bin', 'node'), join(pkg, 'bin', 'node.exe'));
  } catch {
    // Not installed: only the checkout's node_modules/.bin is left to look in.
  }
  const root = fileURLToPath(new URL('..', import.meta.url));
  candidates.push(join(root, 'node_modules', '.bin', 'node'));
  return candidates.find((path) => existsSync(path));
}

/** Runs this script again with `node`; signals are passed on, and its exit is ours. */
function reexec(node) {
  const child = spawn(node, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GATEHOUSE_REEXEC: '1' },
  });
  const forward = (signal) => child.kill(signal);
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, forward);
  child.on('error', (error) => {
    process.stderr.write(`gatehouse: cannot run ${node}: ${error.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (signal !== null) {
      // Die of the same signal, so that whoever started us sees what happened.
      for (const name of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.removeListener(name, forward);
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
}
