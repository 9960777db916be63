/** The gatehouse command: run, validate, proxy, ca-path. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { configFromObject, loadConfigFile } from './config/load.ts';
import { isHttpsUrl, type Config } from './config/schema.ts';
import { ConfigError } from './core/errors.ts';
import { createLogger } from './core/logger.ts';
import { defaultStateDir } from './core/state-dir.ts';
import { Gatehouse } from './gatehouse.ts';
import { Primary, workerCount } from './workers/primary.ts';

const HELP: Record<string, string> = {
  main: `Usage: gatehouse <command> [options]

       gatehouse --config FILE   (the same as run --config FILE)

Commands:
  run FILE                   Start Gatehouse with a configuration file (or run --config FILE)
  validate FILE              Check a configuration file and exit (or validate --config FILE)
  proxy --from ADDR --to URL Forward one address to one or more servers, no file needed
  ca-path [FILE]             Print the local CA's root certificate file, to trust it (tls: internal)

Options:
  -v, --version              print the version and exit
  -h, --help                 show this help

Run "gatehouse <command> --help" for a command's options.
`,
  run: `Usage: gatehouse run FILE
       gatehouse run --config FILE

Starts Gatehouse with a YAML (or JSON) configuration file (see docs/configuration.md).
Signals: SIGHUP reloads the file (a bad file is rejected and the running configuration stays);
SIGTERM or SIGINT stops accepting, finishes in-flight requests up to shutdown_timeout, then exits.

Options:
  -c, --config FILE   the configuration file (or give it as the one argument)
  --workers N|auto    worker threads serving requests (overrides the file's workers:)
  -h, --help          show this help
`,
  validate: `Usage: gatehouse validate FILE
       gatehouse validate --config FILE

Checks a configuration file. Prints "FILE: ok" and exits 0, or prints each problem as
FILE:LINE:COL path: what is wrong, and exits 1.
`,
  'ca-path': `Usage: gatehouse ca-path [FILE]
       gatehouse ca-path --config FILE

Prints the path of the local CA's root certificate (the CA of "tls: { internal: ... }"), making
the CA first if there is none yet, so that it can be trusted before Gatehouse first runs. The CA
lives in the configuration's state_dir, else in $XDG_DATA_HOME/gatehouse or
~/.local/share/gatehouse. To trust it on Debian or Ubuntu, for example:

  sudo cp "$(gatehouse ca-path)" /usr/local/share/ca-certificates/gatehouse.crt
  sudo update-ca-certificates

Options:
  -c, --config FILE   the configuration file whose state_dir to use
  -h, --help          show this help
`,
  proxy: `Usage: gatehouse proxy --from ADDR --to URL [--to URL ...] [options]

Forwards every request received on ADDR to the servers, round robin.
Example: gatehouse proxy --from 127.0.0.1:8080 --to http://127.0.0.1:3000 --to http://127.0.0.1:3001
         gatehouse proxy --from https://127.0.0.1:8443 --cert site.pem --key site.key --to http://127.0.0.1:3000
         gatehouse proxy --from 127.0.0.1:8080 --to https://10.0.0.5:8443 --backend-ca internal-ca.pem

Options:
  --from ADDR          address to listen on: host:port (or http://host:port), or https://host:port
                       for TLS with --cert and --key (required)
  --cert FILE          PEM certificate (chain) served on an https:// --from
  --key FILE           its PEM private key
  --to URL             a server, http://host:port or https://host:port (required, repeatable);
                       https servers' certificates are verified against the system's CAs
  --backend-ca FILE    PEM CA certificates that sign the https servers' certificates (instead of the system's)
  --access-log FORMAT  json (default), combined, extended or off
  --health-check PATH  check each server with GET PATH (2xx/3xx passes); a failing server is taken out
  --health-interval D  how often to check, e.g. 2s (default 5s; needs --health-check)
  --workers N|auto     worker threads serving requests (default 1; auto: one per usable CPU)
  -h, --help           show this help
`,
};

/** Runs one command line (without `node` and the script); resolves with the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  // The attached forms of `gatehouse --config FILE` (below) too: --config=FILE, -cFILE.
  if (command !== undefined && (command.startsWith('--config=') || (command.startsWith('-c') && command.length > 2))) return run(argv.slice());
  switch (command) {
    case 'run':
      return run(rest);
    // `gatehouse --config FILE`: run is the command people reach for without naming it.
    case '-c':
    case '--config':
      return run(argv.slice());
    case '-v':
    case '--version':
      if (rest.length > 0) return usageError('main', `${command} takes no arguments`);
      process.stdout.write(`gatehouse ${version()}\n`);
      return 0;
    case 'validate':
      return validate(rest);
    case 'proxy':
      return proxy(rest);
    case 'ca-path':
      return caPath(rest);
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(HELP.main as string);
      return command === undefined ? 2 : 0;
    default:
      return usageError('main', command.startsWith('-') ? `unknown option "${command}"` : `unknown command "${command}"`);
  }
}

/** The version in package.json (next to src/ and dist/ alike). */
function version(): string {
  const manifest: unknown = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  const value = typeof manifest === 'object' && manifest !== null ? (manifest as { version?: unknown }).version : undefined;
  return typeof value === 'string' ? value : 'unknown';
}

/** The file named by `--config FILE` or as the one argument, or what is wrong with the command line. */
function configFileOf(parsed: Parsed): string | { error: string } {
  const flag = parsed.values.config;
  const [positional, ...extra] = parsed.positionals;
  if (extra.length > 0) return { error: `unexpected argument "${extra[0]}"` };
  if (typeof flag === 'string' && positional !== undefined) return { error: `give the file once: --config ${flag} or ${positional}` };
  const file = typeof flag === 'string' ? flag : positional;
  return file === undefined ? { error: 'FILE is required' } : file;
}

async function run(args: string[]): Promise<number> {
  const parsed = parse(args, { config: { type: 'string', short: 'c' }, workers: { type: 'string' } }, 'run', true);
  if (parsed.values.help) return printHelp('run');
  const file = configFileOf(parsed);
  if (typeof file !== 'string') return usageError('run', file.error);
  const workers = workersFlag(parsed.values.workers);
  if (workers === null) return usageError('run', '--workers takes a number from 1 to 256 or auto');
  const config = await loadConfigFile(file);
  // The flag is passed beside the configuration, not merged into a copy: a copy would lose the
  // file:line that errors found later (a port in use) point to.
  return serve(config, file, workers ?? config.workers);
}

async function validate(args: string[]): Promise<number> {
  const parsed = parse(args, { config: { type: 'string', short: 'c' } }, 'validate', true);
  if (parsed.values.help) return printHelp('validate');
  const file = configFileOf(parsed);
  if (typeof file !== 'string') return usageError('validate', file.error);
  await loadConfigFile(file);
  process.stdout.write(`${file}: ok\n`);
  return 0;
}

async function caPath(args: string[]): Promise<number> {
  const parsed = parse(args, { config: { type: 'string', short: 'c' } }, 'ca-path', true);
  if (parsed.values.help) return printHelp('ca-path');
  // The file is optional here: without one, the default state directory.
  const file = parsed.positionals.length === 0 && parsed.values.config === undefined ? undefined : configFileOf(parsed);
  if (typeof file === 'object') return usageError('ca-path', file.error);
  const stateDir = file === undefined ? defaultStateDir() : (await loadConfigFile(file)).state_dir;
  const { LocalCa } = await import('./listeners/tls/local-ca.ts');
  const ca = await LocalCa.open(stateDir);
  process.stdout.write(`${ca.rootFile}\n`);
  return 0;
}

async function proxy(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      from: { type: 'string' },
      cert: { type: 'string' },
      key: { type: 'string' },
      to: { type: 'string', multiple: true },
      'backend-ca': { type: 'string' },
      'access-log': { type: 'string' },
      'health-check': { type: 'string' },
      'health-interval': { type: 'string' },
      workers: { type: 'string' },
    },
    'proxy',
  );
  if (values.help) return printHelp('proxy');
  const from = values.from;
  const to = values.to;
  if (typeof from !== 'string' || !Array.isArray(to) || to.length === 0) {
    return usageError('proxy', '--from ADDR and at least one --to URL are required');
  }
  const listen = listenerOf(from, stringFlag(values.cert), stringFlag(values.key));
  if (typeof listen === 'string') return usageError('proxy', listen);
  const backendCa = stringFlag(values['backend-ca']);
  if (backendCa !== undefined && !to.some((url) => isHttpsUrl(String(url)))) {
    return usageError('proxy', '--backend-ca applies to https:// servers; give at least one --to https://...');
  }
  const format = values['access-log'] ?? 'json';
  if (format !== 'json' && format !== 'combined' && format !== 'extended' && format !== 'off') {
    return usageError('proxy', '--access-log takes json, combined, extended or off');
  }
  const healthPath = stringFlag(values['health-check']);
  const healthInterval = stringFlag(values['health-interval']);
  if (healthInterval !== undefined && healthPath === undefined) return usageError('proxy', '--health-interval needs --health-check PATH');
  if (healthPath !== undefined && !healthPath.startsWith('/')) return usageError('proxy', '--health-check takes a path such as /health');
  const healthCheck = healthPath === undefined ? {} : { health_check: { path: healthPath, ...(healthInterval === undefined ? {} : { interval: healthInterval }) } };
  const workers = workersFlag(values.workers);
  if (workers === null) return usageError('proxy', '--workers takes a number from 1 to 256 or auto');
  const config = configFromObject(
    {
      ...(workers === undefined ? {} : { workers }),
      listen: [listen],
      access_log: format === 'off' ? { enabled: false } : { format },
      upstreams: {
        default: { servers: to.map((url) => ({ url: String(url) })), ...healthCheck, ...(backendCa === undefined ? {} : { tls: { ca: backendCa } }) },
      },
      routes: [{ match: {}, upstream: 'default' }],
    },
    'command line',
  );
  return serve(config, undefined, config.workers);
}

/** `--workers`: undefined when not given, null when not a number from 1 to 256 or auto. */
function workersFlag(value: string | boolean | (string | boolean)[] | undefined): number | 'auto' | undefined | null {
  if (value === undefined) return undefined;
  if (value === 'auto') return 'auto';
  const count = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : Number.NaN;
  return count >= 1 && count <= 256 ? count : null;
}

type ListenInput = NonNullable<Parameters<typeof configFromObject>[0]['listen']>[number];

/**
 * The listener of `proxy --from`: "host:port" or "http://host:port" plain, "https://host:port"
 * with the --cert and --key pair; a string says what is wrong with the flags.
 */
function listenerOf(from: string, cert: string | undefined, key: string | undefined): ListenInput | string {
  const scheme = /^([a-z]+):\/\//i.exec(from)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (cert !== undefined || key !== undefined) return '--cert and --key need an https:// --from, such as https://127.0.0.1:8443';
    return { address: from };
  }
  if (scheme !== 'http' && scheme !== 'https') return `--from takes host:port, http://host:port or https://host:port, not ${scheme}://`;
  if (!URL.canParse(from)) return `--from ${from} is not a valid address`;
  const url = new URL(from);
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    return `--from takes an address only (${url.protocol}//host:port), without a path`;
  }
  const address = `${url.hostname}:${url.port === '' ? (scheme === 'https' ? 443 : 80) : url.port}`;
  if (scheme === 'http') {
    if (cert !== undefined || key !== undefined) return '--cert and --key need an https:// --from, such as https://127.0.0.1:8443';
    return { address };
  }
  if (cert === undefined || key === undefined) return 'an https:// --from needs --cert FILE and --key FILE';
  return { address, tls: { certificates: [{ cert, key }] } };
}

/** Runs until a signal stops the process; resolves with the exit code. `workersSetting`: --workers, else the file's. */
async function serve(config: Config, file: string | undefined, workersSetting: Config['workers']): Promise<number> {
  const logger = createLogger(config.log.level);
  const options = file === undefined ? { logger } : { logger, configFile: file };
  const workers = workerCount(workersSetting);
  // One worker is the main thread itself: no thread, no shared memory, nothing to pass around.
  const gatehouse: { reload(): Promise<void>; stop(): Promise<void> } =
    workers > 1 ? await Primary.start(config, { ...options, workers }) : await Gatehouse.start(config, options);
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
    let stopping = false;
    const stop = (signal: string): void => {
      // A second signal while draining is ignored, not fatal: Ctrl-C under `npm start` arrives
      // twice (from the terminal and forwarded by npm), and the drain is bounded by shutdown_timeout.
      if (stopping) {
        logger.info({ signal }, 'already stopping');
        return;
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      gatehouse.stop().then(
        () => resolve(0),
        (error: unknown) => {
          logger.error({ error: String(error) }, 'error while stopping');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
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
    // parseArgs adds advice on `--` for positionals that start with a dash: one line is enough.
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(command, message.replace(/\. To specify a positional argument.*$/s, ''));
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

/** One line saying what is wrong, one saying where the usage is; exit code 2. */
function usageError(command: string, message: string): number {
  const name = command === 'main' ? 'gatehouse' : `gatehouse ${command}`;
  process.stderr.write(`${name}: ${message}\nRun "${name} --help" for usage.\n`);
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
