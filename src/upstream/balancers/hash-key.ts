/** Compiles `hash.key` into a function that reads a request's key, once per snapshot. */
import type { UpstreamConfig } from '../../config/schema.ts';
import type { Exchange } from '../../core/exchange.ts';
import { cookieValue, queryValue } from '../request-keys.ts';

type HashConfig = NonNullable<UpstreamConfig['hash']>;

/** Undefined when the request has no such key (the balancer then picks at random). */
export function compileHashKey(config: HashConfig): (ex: Exchange) => string | undefined {
  const name = config.name ?? '';
  switch (config.key) {
    case 'client_ip':
      return (ex) => ex.peer;
    case 'header': {
      const header = name.toLowerCase();
      return (ex) => {
        const value = ex.req.headers[header];
        return Array.isArray(value) ? value[0] : value;
      };
    }
    case 'cookie':
      return (ex) => cookieValue(ex.req.headers.cookie, name);
    case 'path':
      return (ex) => ex.info.path;
    case 'query':
      return name === '' ? (ex) => (ex.info.rawQuery === '' ? undefined : ex.info.rawQuery) : (ex) => queryValue(ex.info.rawQuery, name);
    case 'uri':
      return (ex) => ex.req.url;
    default:
      return config.key satisfies never;
  }
}
