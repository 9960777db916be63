/** Reading an admin request's body, bounded. */
import type { IncomingMessage } from 'node:http';
import type { AdminAnswer } from './admin.ts';

/**
 * The body as UTF-8 text, or the 413 answer when it is longer than `limit` bytes. The rest of a
 * body too long is read and dropped rather than left unread: stopping would destroy the socket
 * before the 413 is written. (Only a client that passed the token check gets here.)
 */
export async function readBody(req: IncomingMessage, limit: number): Promise<string | AdminAnswer> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of req) {
    length += (chunk as Buffer).length;
    if (length <= limit) chunks.push(chunk as Buffer);
  }
  if (length > limit) return { status: 413, body: { error: `the body is over ${limit} bytes` } };
  return Buffer.concat(chunks).toString('utf8');
}
