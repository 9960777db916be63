/** TLS from certificate files only, read once: the stand-in until the certificate store is wired in. */
import { readFileSync } from 'node:fs';
import type { ListenerTls } from '../listener.ts';
import type { ListenerConfig } from '../../config/listener-schema.ts';

export function staticTls(config: NonNullable<ListenerConfig['tls']>): ListenerTls {
  return {
    options: {
      cert: config.certificates.map((c) => readFileSync(c.cert)),
      key: config.certificates.map((c) => readFileSync(c.key)),
      minVersion: 'TLSv1.2',
    },
    attach: () => {},
  };
}
