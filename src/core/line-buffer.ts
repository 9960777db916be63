const QUOTE = 0x22;
const BACKSLASH = 0x5c;

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

  /**
   * Appends `text` between double quotes as a JSON string when it needs no escaping (printable
   * ASCII without `"` or `\`), checking and copying in one pass; otherwise appends nothing and
   * returns false.
   */
  quotedPlain(text: string): boolean {
    const n = text.length;
    if (this.length + n + 2 > this.#bytes.length) this.#grow(n + 2);
    const bytes = this.#bytes;
    let at = this.length;
    bytes[at++] = QUOTE;
    for (let i = 0; i < n; i++) {
      const c = text.charCodeAt(i);
      if (c < 0x20 || c === QUOTE || c === BACKSLASH || c > 0x7e) return false;
      bytes[at++] = c;
    }
    bytes[at++] = QUOTE;
    this.length = at;
    return true;
  }

  /** Appends a non-negative integer in decimal, without making its string. */
  integer(value: number): void {
    if (!(value >= 0 && value <= Number.MAX_SAFE_INTEGER && Number.isInteger(value))) {
      this.ascii(String(value));
      return;
    }
    let digits = 1;
    for (let rest = value; rest >= 10; rest = Math.floor(rest / 10)) digits++;
    if (this.length + digits > this.#bytes.length) this.#grow(digits);
    const bytes = this.#bytes;
    let at = this.length + digits;
    this.length = at;
    let rest = value;
    do {
      const next = Math.floor(rest / 10);
      bytes[--at] = 0x30 + (rest - next * 10);
      rest = next;
    } while (rest > 0);
  }

  /** Appends bytes made once (the constant parts of a line). */
  bytes(fragment: Uint8Array): void {
    const n = fragment.length;
    if (this.length + n > this.#bytes.length) this.#grow(n);
    // TypedArray#set costs more than the copy itself for the few bytes of most fragments.
    if (n > 16) {
      this.#bytes.set(fragment, this.length);
      this.length += n;
      return;
    }
    const bytes = this.#bytes;
    let at = this.length;
    for (let i = 0; i < n; i++) bytes[at++] = fragment[i] as number;
    this.length = at;
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
