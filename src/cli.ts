/** The gatehouse command: run, validate, proxy. */
import { parseArgs } from 'node:util';
import { configFromObject, loadConfigFile } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { ConfigError } from './core/errors.ts';
import { createLogger } from './core/logger.ts';
import { Gatehouse } from './gatehouse.ts';

const HELP: Record<string, string> = {
  main: `Usage: gatehouse <command> [options]

Commands:
  run --config FILE          Start Gatehouse with a configuration file
  validate FILE              Check a configuration file and exit
  proxy --from ADDR --to URL Forward one address to one or more servers, no file needed

Run "gatehouse <command> --help" for a command's options.
`,
  run: `Usage: gatehouse run --config FILE

Starts Gatehouse with a YAML (or JSON) configuration file (see docs/configuration.md).
Signals: SIGHUP reloads the file (a bad file is rejected and the running configuration stays);
SIGTERM or SIGINT stops accepting, finishes in-flight requests up to shutdown_timeout, then exits.

Options:
  -c, --config FILE   the configuration file (required)
  -h, --help          show this help
`,
  validate: `Usage: gatehouse validate FILE

Checks a configuration file. Prints "FILE: ok" and exits 0, or prints each problem as
FILE:LINE:COL path: what is wrong, and exits 1.
`,
  proxy: `Usage: gatehouse proxy --from ADDR --to URL [--to URL ...] [options]

Forwards every request received on ADDR to the servers, round robin.
Example: gatehouse proxy --from 127.0.0.1:8080 --to http://127.0.0.1:3000 --to http://127.0.0.1:3001

Options:
  --from ADDR          address to listen on, host:port (required)
  --to URL             a server, http://host:port (required, repeatable)
  --access-log FORMAT  json (default), combined or off
  --health-check PATH  check each server with GET PATH (2xx/3xx passes); a failing server is taken out
  --health-interval D  how often to check, e.g. 2s (default 5s; needs --health-check)
  -h, --help           show this help
`,
};

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'run':
      return run(rest);
    case 'validate':
      return validate(rest);
    case 'proxy':
      return proxy(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP.main as string);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`gatehouse: unknown command "${command}"\n\n${HELP.main}`);
      return 2;
  }
}

async function run(args: string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string', short: 'c' } }, 'run');
  if (values.help) return printHelp('run');
  const file = values.config;
  if (typeof file !== 'string') return usageError('run', '--config FILE is required');
  const config = await loadConfigFile(file);
  return serve(config, file);
}

async function validate(args: string[]): Promise<number> {
  const { values, positionals } = parse(args, {}, 'validate', true);
  if (values.help) return printHelp('validate');
  const file = positionals[0];
  if (file === undefined) return usageError('validate', 'FILE is required');
  await loadConfigFile(file);
  process.stdout.write(`${file}: ok\n`);
  return 0;
}

async function proxy(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      from: { type: 'string' },
      to: { type: 'string', multiple: true },
      'access-log': { type: 'string' },
      'health-check': { type: 'string' },
      'health-interval': { type: 'string' },
    },
    'proxy',
  );
  if (values.help) return printHelp('proxy');
  const from = values.from;
  const to = values.to;
  if (typeof from !== 'string' || !Array.isArray(to) || to.length === 0) {
    return usageError('proxy', '--from ADDR and at least one --to URL are required');
  }
  const format = values['access-log'] ?? 'json';
  if (format !== 'json' && format !== 'combined' && format !== 'off') {
    return usageError('proxy', '--access-log takes json, combined or off');
  }
  const healthPath = stringFlag(values['health-check']);
  const healthInterval = stringFlag(values['health-interval']);
  if (healthInterval !== undefined && healthPath === undefined) return usageError('proxy', '--health-interval needs --health-check PATH');
  if (healthPath !== undefined && !healthPath.startsWith('/')) return usageError('proxy', '--health-check takes a path such as /health');
  const healthCheck = healthPath === undefined ? {} : { health_check: { path: healthPath, ...(healthInterval === undefined ? {} : { interval: healthInterval }) } };
  const config = configFromObject(
    {
      listen: [{ address: from }],
      access_log: format === 'off' ? { enabled: false } : { format },
      upstreams: { default: { servers: to.map((url) => ({ url: String(url) })), ...healthCheck } },
      routes: [{ match: {}, upstream: 'default' }],
    },
    'command line',
  );
  return serve(config, undefined);
}

/** Runs until a signal stops the process; resolves with the exit code. */
async function serve(config: Config, file: string | undefined): Promise<number> {
  const logger = createLogger(config.log.level);
  const gatehouse = await Gatehouse.start(config, file === undefined ? { logger } : { logger, configFile: file });
  process.on('SIGHUP', () => {
    if (file === undefined) {
      logger.warn('SIGHUP ignored: started without a configuration file');
      return;
    }
    gatehouse.reload().catch((error: unknown) => {
      logger.error({ error: error instanceof Error ? error.message : String(error) }, 'reload rejected, the running configuration stays');
    });
  });
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      logger.info({ signal }, 'stopping');
      gatehouse.stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ error: String(error) }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }>;

interface Parsed {
  values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  positionals: string[];
}

function parse(args: string[], options: OptionSpec, command: string, allowPositionals = false): Parsed {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals, strict: true });
  } catch (error: unknown) {
    throw new UsageError(command, error instanceof Error ? error.message : String(error));
  }
}

class UsageError extends Error {
  readonly command: string;
  constructor(command: string, message: string) {
    super(message);
    this.command = command;
  }
}

function printHelp(command: string): number {
  process.stdout.write(HELP[command] as string);
  return 0;
}

function usageError(command: string, message: string): number {
  process.stderr.write(`gatehouse ${command}: ${message}\n\n${HELP[command]}`);
  return 2;
}

/** Runs the CLI and exits with its code; errors become one clear message. */
export async function runCli(argv: readonly string[]): Promise<void> {
  let code: number;
  try {
    code = await main(argv);
  } catch (error: unknown) {
    if (error instanceof ConfigError) {
      process.stderr.write(`gatehouse: invalid configuration\n${error.message}\n`);
      code = 1;
    } else if (error instanceof UsageError) {
      code = usageError(error.command, error.message);
    } else {
      process.stderr.write(`gatehouse: ${error instanceof Error ? error.message : String(error)}\n`);
      code = 1;
    }
  }
  process.exit(code);
}

if (import.meta.main) await runCli(process.argv.slice(2));

/** A string option's value (parseArgs types every value loosely). */
function stringFlag(value: string | boolean | (string | boolean)[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}
