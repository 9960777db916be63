#!/usr/bin/env node
// Runs the built CLI when installed as a package, or the TypeScript sources in a checkout.
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli.js', import.meta.url);
const { runCli } = await import(existsSync(built) ? built.href : new URL('../src/cli.ts', import.meta.url).href);
await runCli(process.argv.slice(2));
