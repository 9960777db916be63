// Minimal typings for the parts of `http-proxy` the benchmark peer uses
// (@types/http-proxy is not a dependency of this project).
declare module 'http-proxy' {
  import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
  import type { Socket } from 'node:net';

  export interface ServerOptions {
    target?: string;
    agent?: Agent;
    xfwd?: boolean;
    changeOrigin?: boolean;
  }

  export interface ProxyServer {
    web(req: IncomingMessage, res: ServerResponse, options?: ServerOptions): void;
    on(event: 'error', listener: (err: Error, req: IncomingMessage, res: ServerResponse | Socket) => void): this;
    close(callback?: () => void): void;
  }

  export function createProxyServer(options?: ServerOptions): ProxyServer;

  const httpProxy: { createProxyServer: typeof createProxyServer };
  export default httpProxy;
}
