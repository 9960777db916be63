/** The gatehouse command: run, validate, proxy, ca-path. */
import { parseArgs } from 'node:util';
import { configFromObject, loadConfigFile } from './config/load.ts';
import { configSchema, isHttpsUrl, type Config } from './config/schema.ts';
import { duration } from './config/units.ts';
import { keepOldGenerationHeadroom } from './core/body-memory.ts';
import { ConfigError } from './core/errors.ts';
import { createLogger } from './core/logger.ts';
import { defaultStateDir } from './core/state-dir.ts';
import { packageVersion } from './core/version.ts';
import { Gatehouse } from './gatehouse.ts';
import { Takeover } from './upgrade/inherit.ts';
import { signalUpgrade, upgradeAndWait } from './upgrade/command.ts';
import { removePidFile, writePidFile } from './upgrade/pid-file.ts';
import { refuseUpgrade, replaceProcess } from './upgrade/upgrade.ts';
import { Primary, workerCount } from './workers/primary.ts';
import { errorMessage } from './core/caught.ts';

const HELP: Record<string, string> = {
  main: `Usage: gatehouse <command> [options]

       gatehouse --config FILE   (the same as run --config FILE)

Commands:
  run FILE                   Start Gatehouse with a configuration file (or run --config FILE)
  validate FILE              Check a configuration file and exit (or validate --config FILE)
  proxy --from ADDR --to URL Forward one address to one or more servers, no file needed
  ca-path [FILE]             Print the local CA's root certificate file, to trust it (tls: internal)
  upgrade --pid-file FILE    Replace the running Gatehouse with a new process, without downtime

Options:
  -v, --version              print the version and exit
  -h, --help                 show this help

Run "gatehouse <command> --help" for a command's options.
`,
  run: `Usage: gatehouse run FILE
       gatehouse run --config FILE

Starts Gatehouse with a YAML (or JSON) configuration file (see docs/configuration.md).
Signals: SIGHUP reloads the file (a bad file is rejected and the running configuration stays);
SIGUSR2 starts a new process from the same command line, hands it the listening sockets and
drains this one (see "gatehouse upgrade --help"); SIGTERM or SIGINT stops accepting, finishes
in-flight requests up to shutdown_timeout, then exits.

Options:
  -c, --config FILE   the configuration file (or give it as the one argument)
  --workers N|auto    worker threads serving requests (overrides the file's workers:)
  --pid-file FILE     write the serving process's pid to FILE (an upgrade writes the new one's)
  -h, --help          show this help
`,
  upgrade: `Usage: gatehouse upgrade --pid-file FILE [--timeout 60s]
       gatehouse upgrade --pid PID

Replaces the running Gatehouse with a new process without refusing a connection or failing a
request: sends it SIGUSR2, and it starts a new process with its own command line (replace the
files on disk first to run a new version), hands over its listening sockets once the new
process has loaded its configuration, then stops accepting and drains (up to shutdown_timeout).
If the new process cannot start, the running one goes on serving and logs why.

With --pid-file (the FILE given to run --pid-file), waits for the outcome: prints the new pid
and exits 0, or exits 1 when the upgrade failed or did not finish in time. With --pid, sends
the signal and exits 0; the log says how it went.

Options:
  --pid-file FILE     the running Gatehouse's pid file
  --pid PID           the running Gatehouse's pid
  --timeout D         how long to wait for the new process to serve (default 60s)
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
  --pid-file FILE      write the serving process's pid to FILE (see gatehouse upgrade)
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
      process.stdout.write(`gatehouse ${packageVersion()}\n`);
      return 0;
    case 'validate':
      return validate(rest);
    case 'proxy':
      return proxy(rest);
    case 'ca-path':
      return caPath(rest);
    case 'upgrade':
      return upgrade(rest);
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
  const parsed = parse(args, { config: { type: 'string', short: 'c' }, workers: { type: 'string' }, 'pid-file': { type: 'string' } }, 'run', true);
  if (parsed.values.help) return printHelp('run');
  const file = configFileOf(parsed);
  if (typeof file !== 'string') return usageError('run', file.error);
  const workers = workersFlag(parsed.values.workers);
  if (workers === null) return usageError('run', '--workers takes a number from 1 to 256 or auto');
  return withTakeover(async (takeover) => {
    const config = await loadConfigFile(file);
    // The flag is passed beside the configuration, not merged into a copy: a copy would lose the
    // file:line that errors found later (a port in use) point to.
    return serve(config, file, workers ?? config.workers, { pidFile: stringFlag(parsed.values['pid-file']), takeover });
  });
}

/**
 * Runs a serving command; when this process replaces another (an upgrade), a failure to start
 * is told to the old process too (which goes on serving and logs it).
 */
async function withTakeover(start: (takeover: Takeover | undefined) => Promise<number>): Promise<number> {
  const takeover = await Takeover.connect();
  try {
    return await start(takeover);
  } catch (error: unknown) {
    await takeover?.failed(errorMessage(error));
    throw error;
  }
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

async function upgrade(args: string[]): Promise<number> {
  const { values } = parse(args, { 'pid-file': { type: 'string' }, pid: { type: 'string' }, timeout: { type: 'string' } }, 'upgrade');
  if (values.help) return printHelp('upgrade');
  const pidFile = stringFlag(values['pid-file']);
  const pid = stringFlag(values.pid);
  if ((pidFile === undefined) === (pid === undefined)) return usageError('upgrade', 'give one of --pid-file FILE or --pid PID');
  if (pid !== undefined && !/^[1-9]\d*$/.test(pid)) return usageError('upgrade', '--pid takes a process id');
  const timeout = duration.safeParse(stringFlag(values.timeout) ?? '60s');
  if (!timeout.success || timeout.data === 0) return usageError('upgrade', '--timeout takes a duration such as 60s');
  if (pid !== undefined && values.timeout !== undefined) return usageError('upgrade', '--timeout needs --pid-file (with --pid there is nothing to wait on)');
  const outcome = pidFile !== undefined ? await upgradeAndWait(pidFile, timeout.data) : signalUpgrade(Number(pid));
  (outcome.code === 0 ? process.stdout : process.stderr).write(`${outcome.message}\n`);
  return outcome.code;
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
      'pid-file': { type: 'string' },
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
  return withTakeover((takeover) => serve(config, undefined, config.workers, { pidFile: stringFlag(values['pid-file']), takeover }));
}

/** `--workers`: undefined when not given, null when the configuration's `workers:` would refuse it. */
function workersFlag(value: string | boolean | (string | boolean)[] | undefined): number | 'auto' | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || (value !== 'auto' && !/^\d+$/.test(value))) return null;
  // The schema's own rule (its range), so that the flag and the file accept the same counts.
  const parsed = configSchema.shape.workers.safeParse(value === 'auto' ? value : Number(value));
  return parsed.success ? parsed.data : null;
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

/** How a serving process is found and whether it replaces another (an upgrade). */
interface ServeOptions {
  readonly pidFile: string | undefined;
  readonly takeover: Takeover | undefined;
}

/** Runs until a signal stops the process; resolves with the exit code. `workersSetting`: --workers, else the file's. */
async function serve(config: Config, file: string | undefined, workersSetting: Config['workers'], serving: ServeOptions): Promise<number> {
  keepOldGenerationHeadroom();
  const logger = createLogger(config.log.level);
  const options = file === undefined ? { logger } : { logger, configFile: file };
  const workers = workerCount(workersSetting);
  const { pidFile, takeover } = serving;
  // Worker threads bind their own sockets (SO_REUSEPORT): there is none to take over.
  if (takeover !== undefined && workers > 1) throw new Error('upgrade: a process with several workers cannot take the sockets over; restart instead');
  // SIGUSR2's default action ends the process: until it can upgrade, it says so instead.
  const early = (): void => logger.warn('SIGUSR2 ignored: still starting');
  process.on('SIGUSR2', early);
  // One worker is the main thread itself: no thread, no shared memory, nothing to pass around.
  const gatehouse: Gatehouse | Primary =
    workers > 1 ? await Primary.start(config, { ...options, workers }) : await Gatehouse.start(config, takeover === undefined ? options : { ...options, inherited: takeover });
  // Before the old process hears that this one serves: it exits only after, so the file always
  // names a live process (systemd reads it again when the main process exits).
  if (pidFile !== undefined) writePidFile(pidFile);
  if (takeover !== undefined && !(await takeover.serving())) logger.warn('upgrade: the process being replaced is gone; this one serves');
  let upgrading = false;
  process.on('SIGHUP', () => {
    if (file === undefined) {
      logger.warn('SIGHUP ignored: started without a configuration file');
      return;
    }
    // The sockets being handed over are those of the running listeners.
    if (upgrading) {
      logger.warn('SIGHUP ignored: an upgrade is in progress');
      return;
    }
    gatehouse.reload().catch((error: unknown) => {
      logger.error({ error: errorMessage(error) }, 'reload rejected, the running configuration stays');
    });
  });
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: string, drain: () => Promise<void> = () => gatehouse.stop()): void => {
      // A second signal while draining is ignored, not fatal: Ctrl-C under `npm start` arrives
      // twice (from the terminal and forwarded by npm), and the drain is bounded by shutdown_timeout.
      if (stopping) {
        logger.info({ signal }, 'already stopping');
        return;
      }
      stopping = true;
      logger.info({ signal }, 'stopping');
      drain().then(
        () => {
          if (pidFile !== undefined) removePidFile(pidFile);
          resolve(0);
        },
        (error: unknown) => {
          logger.error({ error: String(error) }, 'error while stopping');
          resolve(1);
        },
      );
    };
    // Not `stop` itself: Node passes the signal's number as a second argument.
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.removeListener('SIGUSR2', early);
    process.on('SIGUSR2', () => {
      if (!(gatehouse instanceof Gatehouse)) {
        refuseUpgrade('not available with several workers (workers > 1); restart instead', logger, pidFile);
        return;
      }
      if (upgrading || stopping) {
        logger.warn(upgrading ? 'SIGUSR2 ignored: an upgrade is in progress' : 'SIGUSR2 ignored: stopping');
        return;
      }
      upgrading = true;
      void replaceProcess(gatehouse.sockets(), logger, pidFile).then((replaced) => {
        upgrading = false;
        if (replaced) stop('SIGUSR2', () => gatehouse.handOver());
      });
    });
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
    const message = errorMessage(error);
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
      process.stderr.write(`gatehouse: ${errorMessage(error)}\n`);
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
