/**
 * What the process being replaced (the old one) and its replacement (the new one) say to each
 * other over the IPC channel of an upgrade (see docs/operations.md#zero-downtime-upgrade).
 *
 *   new → old  hello            the new process listens for messages now
 *   old → new  offer { keys }   the listening sockets it can hand over
 *   new → old  want { key }     when the new process is about to serve that address
 *   old → new  socket { key }   with the listening socket as the message's handle
 *   new → old  serving          it serves: the old one stops accepting and drains
 *   new → old  failed { error } it cannot start (and exits): the old one goes on
 */

/** The environment variable naming the old process's pid: its presence makes a process the new one. */
export const UPGRADE_ENV = 'GATEHOUSE_UPGRADE_FROM';

export type FromNew =
  | { readonly type: 'hello' }
  | { readonly type: 'want'; readonly key: string }
  | { readonly type: 'serving' }
  | { readonly type: 'failed'; readonly error: string };

export type FromOld = { readonly type: 'offer'; readonly keys: readonly string[] } | { readonly type: 'socket'; readonly key: string };

/** `value` as a message of the other side, or undefined when it is none (a stray message is ignored). */
export function messageOf<T extends { type: string }>(value: unknown, types: readonly T['type'][]): T | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const type = (value as { type?: unknown }).type;
  return typeof type === 'string' && (types as readonly string[]).includes(type) ? (value as T) : undefined;
}
