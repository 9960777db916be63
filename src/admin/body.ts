/** Reading an admin request's body, bounded. */
import type { IncomingMessage } from 'node:http';

/**
 * The body as UTF-8 text, or null when it is longer than `limit` bytes. The rest of a body too
 * long is read and dropped rather than left unread: stopping would destroy the socket before the
 * 413 is written. (Only a client that passed the token check gets here.)
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req) {
    length += (chunk as Buffer).length;
    if (length <= limit) chunks.push(chunk as Buffer);
  }
  return length > limit ? null : Buffer.concat(chunks).toString('utf8');
}
