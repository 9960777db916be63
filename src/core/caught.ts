/**
 * What a catch block holds, made usable: anything can be thrown (a string, an object, undefined),
 * so a `catch (error: unknown)` narrows it here rather than each time it is caught.
 */

/** `value` when it is an Error, else an Error whose message is `String(value)`. */
export function asError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** The message of an Error, else `String(value)`: for logs and error messages (no Error made). */
export function errorMessage(value: unknown): string {
  return value instanceof Error ? value.message : String(value);
}

/**
 * A system error's code (ENOENT, ECONNREFUSED), else its message: Node's messages of file errors
 * name the path, which the caller's own message usually names already.
 */
export function errorCodeOrMessage(value: unknown): string {
  const code = typeof value === 'object' && value !== null ? (value as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : errorMessage(value);
}
