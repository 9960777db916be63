/**
 * Listen addresses that cannot be bound together: the same address twice, or two that overlap the
 * way Linux sees them, so that `gatehouse validate` refuses what `run` would fail to bind.
 */
import { isIP } from 'node:net';
import { formatPath, type PathKey, type Problem } from './problem.ts';
import { parseHostPort, type HostPort } from './units.ts';

/** One listen address of the file: where it is (the config path of its block) and what it says. */
export interface NamedAddress {
  readonly path: readonly PathKey[];
  readonly address: string;
}

type Host = { readonly kind: 'any4' | 'any6' | 'ip4' | 'ip6' | 'name'; readonly text: string };

function classify(host: string): Host {
  const family = isIP(host);
  if (family === 4) return { kind: host === '0.0.0.0' ? 'any4' : 'ip4', text: new URL(`http://${host}/`).hostname };
  if (family === 6) {
    const text = new URL(`http://[${host}]/`).hostname;
    return { kind: text === '[::]' ? 'any6' : 'ip6', text };
  }
  return { kind: 'name', text: host.toLowerCase() };
}

/**
 * Whether two addresses cannot both be bound. Node binds "::" dual-stack, so it takes every IPv4
 * address of the port too; "0.0.0.0" takes every IPv4 address but not a given IPv6 one. A host
 * name may resolve to either family: it clashes with itself and with "::" only, so that a file
 * that would bind is never refused.
 */
export function addressesOverlap(a: HostPort, b: HostPort): boolean {
  if (a.port !== b.port || a.port === 0) return false;
  const x = classify(a.host);
  const y = classify(b.host);
  if (x.text === y.text) return true;
  if (x.kind === 'any6' || y.kind === 'any6') return true;
  const v4 = (h: Host): boolean => h.kind === 'any4' || h.kind === 'ip4';
  return (x.kind === 'any4' && v4(y)) || (y.kind === 'any4' && v4(x));
}

/** A problem at every address that overlaps an earlier one, naming the earlier one. */
export function addressClashes(addresses: readonly NamedAddress[]): Problem[] {
  const seen: (NamedAddress & { readonly hostPort: HostPort })[] = [];
  const clashes: Problem[] = [];
  for (const named of addresses) {
    const hostPort = parseHostPort(named.address);
    if (hostPort === undefined) continue;
    const earlier = seen.find((s) => addressesOverlap(s.hostPort, hostPort));
    if (earlier !== undefined) {
      clashes.push({ path: [...named.path, 'address'], message: clashMessage(earlier, named.address, hostPort) });
    }
    seen.push({ ...named, hostPort });
  }
  return clashes;
}

function clashMessage(earlier: NamedAddress & { readonly hostPort: HostPort }, address: string, hostPort: HostPort): string {
  const other = formatPath(earlier.path);
  if (classify(earlier.hostPort.host).text === classify(hostPort.host).text) {
    return `${address} is already used by ${other}; give each listener its own address or port`;
  }
  const any6 = [earlier.hostPort.host, hostPort.host].map(classify).some((h) => h.kind === 'any6');
  const takes = any6 ? '"::" takes every address, IPv4 and IPv6,' : '"0.0.0.0" takes every IPv4 address';
  return `${address} overlaps ${other} (${earlier.address}): ${takes} on port ${hostPort.port}; use another port`;
}
