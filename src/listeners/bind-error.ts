/**
 * A listen address that cannot be bound, said so that the user knows which listener and what to
 * do ("another process is listening on 127.0.0.1:8080; stop it or choose another port") rather
 * than with the bare system error.
 */
import { parseHostPort } from '../config/units.ts';
import { errorMessage } from '../core/caught.ts';

/** A bind that failed: names the listener, the address and, when known, where the file sets it. */
export class ListenError extends Error {
  /** The system error code (EADDRINUSE, EACCES, EADDRNOTAVAIL...), when there is one. */
  readonly code: string | undefined;
  constructor(message: string, code: string | undefined, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenError';
    this.code = code;
  }
}

/**
 * The ListenError for `error`, thrown by binding `address`: `what` names the listener in the
 * configuration ("listen[0]", "admin"), `where` is its file:line:col when it came from a file.
 */
export function listenError(error: unknown, address: string, what: string, where: string | undefined): ListenError {
  const code = typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;
  const reason = errorMessage(error);
  const hostPort = parseHostPort(address);
  const port = hostPort?.port ?? 0;
  let advice: string;
  switch (code) {
    case 'EADDRINUSE':
      advice = `another process is listening on ${address}; stop it or choose another port`;
      break;
    case 'EACCES':
      advice =
        port > 0 && port < 1024
          ? `port ${port} is privileged (below 1024): run with the CAP_NET_BIND_SERVICE capability, or choose a port of 1024 or more`
          : `permission denied (${reason}); choose another address or port`;
      break;
    case 'EADDRNOTAVAIL':
      advice = `${hostPort?.host ?? address} is not an address of this machine; use one of its addresses, 0.0.0.0 or [::]`;
      break;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      advice = `the host name ${hostPort?.host ?? address} does not resolve; use an IP address or fix the name`;
      break;
    default:
      advice = reason;
  }
  const place = where === undefined ? what : `${what} at ${where}`;
  return new ListenError(`cannot listen on ${address} (${place}): ${advice}`, code, error);
}
