/**
 * The new process's side of an upgrade: it takes the listening sockets of the process it
 * replaces over the IPC channel that process opened (node:child_process passes a listening
 * socket as a message's handle, SCM_RIGHTS underneath), serves them, and then tells the old
 * process to drain. Both processes hold the same kernel socket for a moment, so a connection
 * waiting in its accept queue is accepted by one or the other, never reset: that is why the
 * socket is passed rather than a second one bound beside it with SO_REUSEPORT (closing a
 * SO_REUSEPORT socket resets the connections queued on it).
 */
import type { Server as NetServer } from 'node:net';
import type { InheritedSockets } from '../listeners/listener-set.ts';
import { messageOf, UPGRADE_ENV, type FromNew, type FromOld } from './messages.ts';

/** How long the old process may take to answer (it is serving meanwhile, so this is generous). */
const ANSWER_TIMEOUT_MS = 10_000;

/** The sockets of the process being replaced, and the messages that end the exchange. */
export class Takeover implements InheritedSockets {
  #keys = new Set<string>();
  #offer: (keys: readonly string[]) => void = () => {};
  readonly #offered = new Promise<void>((resolve) => {
    this.#offer = (keys) => {
      this.#keys = new Set(keys);
      resolve();
    };
  });
  readonly #waiting = new Map<string, (server: NetServer) => void>();
  readonly #onMessage = (value: unknown, handle: unknown): void => {
    const message = messageOf<FromOld>(value, ['offer', 'socket']);
    if (message?.type === 'offer') this.#offer(message.keys);
    else if (message?.type === 'socket') this.#received(message.key, handle);
  };

  readonly predecessor: number;

  private constructor(predecessor: number) {
    this.predecessor = predecessor;
    process.on('message', this.#onMessage);
  }

  /**
   * When this process was started by a Gatehouse it replaces (an upgrade): the channel to it,
   * once it has said which sockets it offers; otherwise (a plain start) undefined.
   */
  static async connect(): Promise<Takeover | undefined> {
    const from = process.env[UPGRADE_ENV];
    // Not passed on: a later upgrade of this process names itself.
    delete process.env[UPGRADE_ENV];
    if (from === undefined || process.send === undefined) return undefined;
    const takeover = new Takeover(Number(from));
    send({ type: 'hello' });
    await withTimeout(takeover.#offered, `the process being replaced (pid ${from}) offered no sockets`);
    return takeover;
  }

  async take(key: string): Promise<NetServer | undefined> {
    if (!this.#keys.delete(key)) return undefined;
    const received = new Promise<NetServer>((resolve) => this.#waiting.set(key, resolve));
    send({ type: 'want', key });
    return withTimeout(received, `the process being replaced did not hand over ${key}`);
  }

  #received(key: string, handle: unknown): void {
    const resolve = this.#waiting.get(key);
    this.#waiting.delete(key);
    if (handle === undefined) return;
    // One nobody waits for any more (timed out) is let go: the old process keeps its own.
    if (resolve === undefined) (handle as NetServer).close();
    else resolve(handle as NetServer);
  }

  /**
   * Tells the old process this one serves (it stops accepting and drains), then closes the
   * channel. False when the old process is gone (it crashed meanwhile): this one serves anyway,
   * since it holds the sockets now.
   */
  async serving(): Promise<boolean> {
    const told = await sendAndWait({ type: 'serving' }).then(() => true, () => false);
    this.#close();
    return told;
  }

  /** Tells the old process this one cannot start (it goes on serving); the caller exits. */
  async failed(error: string): Promise<void> {
    await sendAndWait({ type: 'failed', error }).catch(() => {});
    this.#close();
  }

  #close(): void {
    process.removeListener('message', this.#onMessage);
    if (process.connected) process.disconnect();
  }
}

function send(message: FromNew): void {
  process.send?.(message);
}

function sendAndWait(message: FromNew): Promise<void> {
  return new Promise((resolve, reject) => {
    if (process.send === undefined || !process.connected) {
      reject(new Error('the process being replaced is gone'));
      return;
    }
    process.send(message, undefined, {}, (error: Error | null) => (error === null ? resolve() : reject(error)));
  });
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`upgrade: ${what} within ${ANSWER_TIMEOUT_MS / 1000}s`)), ANSWER_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
