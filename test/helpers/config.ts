/** Helpers for configuration tests: YAML text line by line, and the error a configuration gets. */
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/load.ts';
import { ConfigError } from '../../src/core/errors.ts';

/** Lines joined with \n, so that line and column numbers in a test are easy to count. */
export const yaml = (...lines: string[]): string => `${lines.join('\n')}\n`;

/** The message of the ConfigError that parsing `text` (named gatehouse.yaml) throws; fails if it is accepted. */
export function errorOf(text: string): string {
  try {
    parseConfigText(text, 'gatehouse.yaml');
  } catch (error: unknown) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error.message;
  }
  assert.fail('the configuration was accepted');
}
