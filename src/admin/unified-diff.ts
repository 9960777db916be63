/**
 * A unified text diff (as `diff -u` writes it) of two texts, for the admin API's config diff:
 * a longest-common-subsequence over lines, hunks with three lines of context. Pure.
 */

/** Changed regions longer than this (lines, each side, past the common head and tail) are compared as one replaced block: the LCS table grows as their product. */
const MAX_LINES = 4000;
const CONTEXT = 3;

type Op = { readonly kind: ' ' | '-' | '+'; readonly line: string };

/** `--- a` / `+++ b` headers and hunks; '' when the texts are equal. */
export function unifiedDiff(before: string, after: string, nameBefore = 'running', nameAfter = 'candidate'): string {
  if (before === after) return '';
  const a = splitLines(before);
  const b = splitLines(after);
  const ops = lcsOps(a, b);
  const out = [`--- ${nameBefore}`, `+++ ${nameAfter}`];
  // Each hunk: a change, the changes less than 2 × CONTEXT lines after it, and CONTEXT lines around.
  let i = 0;
  while (i < ops.length) {
    if (ops[i]?.kind === ' ') {
      i++;
      continue;
    }
    const start = Math.max(0, i - CONTEXT);
    let lastChange = i;
    let k = i;
    while (k < ops.length && k - lastChange <= 2 * CONTEXT) {
      if (ops[k]?.kind !== ' ') lastChange = k;
      k++;
    }
    const end = Math.min(ops.length, lastChange + CONTEXT + 1);
    out.push(hunk(ops, start, end));
    i = end;
  }
  return `${out.join('\n')}\n`;
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function hunk(ops: readonly Op[], start: number, end: number): string {
  // Line numbers at `start`: count the lines of each side before it.
  let aLine = 1;
  let bLine = 1;
  for (let k = 0; k < start; k++) {
    const kind = ops[k]?.kind;
    if (kind !== '+') aLine++;
    if (kind !== '-') bLine++;
  }
  const body: string[] = [];
  let aCount = 0;
  let bCount = 0;
  for (let k = start; k < end; k++) {
    const op = ops[k] as Op;
    if (op.kind !== '+') aCount++;
    if (op.kind !== '-') bCount++;
    body.push(`${op.kind}${op.line}`);
  }
  // diff -u numbers an empty side by the line before it.
  const range = (line: number, count: number): string => (count === 0 ? `${line - 1},0` : count === 1 ? `${line}` : `${line},${count}`);
  return [`@@ -${range(aLine, aCount)} +${range(bLine, bCount)} @@`, ...body].join('\n');
}

function lcsOps(a: readonly string[], b: readonly string[]): Op[] {
  // The common head and tail first: most edits touch a few lines of a long file.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (tail < a.length - head && tail < b.length - head && a[a.length - 1 - tail] === b[b.length - 1 - tail]) tail++;
  const midA = a.slice(head, a.length - tail);
  const midB = b.slice(head, b.length - tail);
  const n = midA.length;
  const m = midB.length;
  const ops: Op[] = a.slice(0, head).map((line) => ({ kind: ' ', line }));
  if (n > MAX_LINES || m > MAX_LINES) {
    for (const line of midA) ops.push({ kind: '-', line });
    for (const line of midB) ops.push({ kind: '+', line });
  } else middleOps(midA, midB, ops);
  for (const line of a.slice(a.length - tail)) ops.push({ kind: ' ', line });
  return ops;
}

/** The LCS edit of the changed middle, appended to `ops`. */
function middleOps(midA: readonly string[], midB: readonly string[], ops: Op[]): void {
  const n = midA.length;
  const m = midB.length;
  // lengths[i * (m + 1) + j]: the LCS of midA[i..] and midB[j..].
  const lengths = new Uint32Array((n + 1) * (m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lengths[i * (m + 1) + j] =
        midA[i] === midB[j] ? (lengths[(i + 1) * (m + 1) + j + 1] as number) + 1 : Math.max(lengths[(i + 1) * (m + 1) + j] as number, lengths[i * (m + 1) + j + 1] as number);
    }
  }
  let i = 0;
  let j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && midA[i] === midB[j]) {
      ops.push({ kind: ' ', line: midA[i] as string });
      i++;
      j++;
    } else if (i < n && (j === m || (lengths[(i + 1) * (m + 1) + j] as number) >= (lengths[i * (m + 1) + j + 1] as number))) {
      // Removals before additions, as diff writes them.
      ops.push({ kind: '-', line: midA[i] as string });
      i++;
    } else {
      ops.push({ kind: '+', line: midB[j] as string });
      j++;
    }
  }
}
