/**
 * A response whose body a WholeBody filter rewrites in one call (a small body of known length,
 * compressed): the body is collected here, rewritten at its end, and written with its head in one
 * go, with the Content-Length of the new body. No stream is made for it, and no chunked framing.
 */
import type { Exchange } from '../core/exchange.ts';
import { WholeBodyInput, type ResponseHeaders, type WholeBody } from '../middleware/pipeline.ts';

export class WholeResponse extends WholeBodyInput {
  readonly #status: number;
  readonly #headers: ResponseHeaders;

  constructor(whole: WholeBody, status: number, headers: ResponseHeaders) {
    super(whole);
    this.#status = status;
    this.#headers = headers;
  }

  /** Rewrites the body and writes head and body; throws what the rewrite threw (nothing is written then). */
  send(ex: Exchange): void {
    const res = ex.res;
    // Gatehouse's own fields are in: #startResponse added them, as to any head.
    const headers = this.#headers;
    if (ex.req.method === 'HEAD') {
      // No body to rewrite, so no length to declare: the head a GET would get, without one.
      res.writeHead(this.#status, headers);
      res.end();
      return;
    }
    const body = this.rewrite();
    headers['content-length'] = String(body.length);
    res.writeHead(this.#status, headers);
    ex.bytes = body.length;
    res.end(body);
  }
}
