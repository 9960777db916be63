/**
 * Environment references in configuration files: `${VAR}` is the variable's value, `${VAR:-text}`
 * the value or `text` when the variable is unset or empty, `$${` a literal `${`. Only values are
 * expanded (never keys). A plain (unquoted) value that is one reference and nothing else takes the
 * type its expansion reads as in YAML (`port: ${PORT}` is a number); a quoted one stays a string.
 */
import { parse, visit, type Document, type Scalar } from 'yaml';

/** One unset variable without a default, at `offset` in the text. */
export interface EnvProblem {
  readonly offset: number | undefined;
  readonly message: string;
}

const REFERENCE = /\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Expands references in the document's values, in place; returns what could not be expanded. */
export function expandEnvironment(doc: Document, env: NodeJS.ProcessEnv = process.env): EnvProblem[] {
  const problems: EnvProblem[] = [];
  visit(doc, {
    Scalar(key, node: Scalar) {
      // Keys are names, not values.
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const source = node.value;
      const expanded = source.replace(REFERENCE, (match, name: string | undefined, fallback: string | undefined) => {
        if (match === '$${') return '${';
        const value = env[name as string];
        if (value !== undefined && (value !== '' || fallback === undefined)) return value;
        if (fallback !== undefined) return fallback;
        problems.push({
          offset: node.range?.[0],
          message: `environment variable ${name as string} is not set (write \${${name as string}:-default} to give a default)`,
        });
        return match;
      });
      node.value = node.type === 'PLAIN' && WHOLE.test(source) ? typed(expanded) : expanded;
    },
  });
  return problems;
}

/** The value as YAML reads a plain scalar: numbers and booleans typed, anything else a string. */
function typed(text: string): unknown {
  try {
    const value: unknown = parse(text);
    return typeof value === 'number' || typeof value === 'boolean' ? value : text;
  } catch {
    return text;
  }
}
