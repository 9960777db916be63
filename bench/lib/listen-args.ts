// `--port N --target URL` for the backend and the peer proxies.
import { parseArgs } from 'node:util';

export interface ListenArgs {
  port: number;
  /** Upstream origin, e.g. http://127.0.0.1:4000 (absent for the backend). */
  target: string | undefined;
  /** PEM files of the certificate and key to listen with over TLS (thin-undici-tls). */
  cert: string | undefined;
  key: string | undefined;
}

export function parseListenArgs(argv: string[]): ListenArgs {
  const { values } = parseArgs({
    args: argv,
    options: { port: { type: 'string' }, target: { type: 'string' }, cert: { type: 'string' }, key: { type: 'string' } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`invalid --port ${values.port ?? '(missing)'}`);
  return { port, target: values.target, cert: values.cert, key: values.key };
}

export function requireTarget(args: ListenArgs): URL {
  if (args.target === undefined) throw new Error('missing --target');
  return new URL(args.target);
}
