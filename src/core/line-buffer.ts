/**
 * A batch of ASCII log lines as bytes, appended in place. Building lines as strings and joining
 * them cost the access log about 1 µs a line at cache-hit rates (V8 flattens the joined string
 * before it can be written, one scattered piece at a time); bytes copied here once are written as
 * they are. Grows when a line does not fit; `clear` keeps the memory for the next batch, unless a
 * burst of long lines made it large.
 */
export class LineBuffer {
  #bytes: Buffer;
  readonly #initialSize: number;
  length = 0;

  constructor(initialSize = 64 * 1024) {
    this.#initialSize = initialSize;
    this.#bytes = Buffer.allocUnsafeSlow(initialSize);
  }

  /** Appends `text`, which must be ASCII (one byte per character). */
  ascii(text: string): void {
    const n = text.length;
    if (this.length + n > this.#bytes.length) this.#grow(n);
    if (n > 32) {
      this.length += this.#bytes.write(text, this.length, 'latin1');
      return;
    }
    const bytes = this.#bytes;
    let at = this.length;
    for (let i = 0; i < n; i++) bytes[at++] = text.charCodeAt(i);
    this.length = at;
  }

  /** Appends bytes made once (the constant parts of a line). */
  bytes(fragment: Uint8Array): void {
    if (this.length + fragment.length > this.#bytes.length) this.#grow(fragment.length);
    this.#bytes.set(fragment, this.length);
    this.length += fragment.length;
  }

  /** The bytes appended since the last clear (a view, valid until the next append). */
  view(): Buffer {
    return this.#bytes.subarray(0, this.length);
  }

  clear(): void {
    this.length = 0;
    if (this.#bytes.length > 16 * this.#initialSize) this.#bytes = Buffer.allocUnsafeSlow(this.#initialSize);
  }

  #grow(more: number): void {
    const next = Buffer.allocUnsafeSlow(Math.max(this.#bytes.length * 2, this.length + more));
    this.#bytes.copy(next, 0, 0, this.length);
    this.#bytes = next;
  }
}
