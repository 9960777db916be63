/** A problem found in a configuration, before the loader gives it a file position. */

/** A step of a config path: a field name or a list index. */
export type PathKey = string | number;

/** What is wrong, and where in the configuration. */
export interface Problem {
  readonly path: readonly PathKey[];
  readonly message: string;
  /** The key itself is wrong (an unknown field): point at it, not at its value. */
  readonly atKey?: boolean;
}

/** `routes[2].upstream`, as messages write a config path. */
export function formatPath(path: readonly PathKey[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}
