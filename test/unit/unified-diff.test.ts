/** unifiedDiff: the admin API's text diff, in diff -u's form. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unifiedDiff } from '../../src/admin/unified-diff.ts';

const lines = (n: number, f: (i: number) => string = (i) => `line ${i}`): string => `${Array.from({ length: n }, (_, i) => f(i)).join('\n')}\n`;

test('equal texts: no diff', () => {
  assert.equal(unifiedDiff('a\nb\n', 'a\nb\n'), '');
});

test('one changed line: one hunk with three lines of context each side', () => {
  const before = lines(10);
  const after = before.replace('line 5\n', 'line five\n');
  assert.equal(unifiedDiff(before, after), ['--- running', '+++ candidate', '@@ -3,7 +3,7 @@', ' line 2', ' line 3', ' line 4', '-line 5', '+line five', ' line 6', ' line 7', ' line 8', ''].join('\n'));
});

test('changes far apart make two hunks; near ones share one', () => {
  const before = lines(30);
  const far = before.replace('line 2\n', 'x\n').replace('line 25\n', 'y\n');
  assert.equal(unifiedDiff(before, far).match(/^@@ /gm)?.length, 2);
  const near = before.replace('line 2\n', 'x\n').replace('line 7\n', 'y\n');
  assert.equal(unifiedDiff(before, near).match(/^@@ /gm)?.length, 1);
});

test('additions at the end and removals at the start; an empty side is numbered as diff does', () => {
  assert.equal(unifiedDiff('a\n', 'a\nb\n'), '--- running\n+++ candidate\n@@ -1 +1,2 @@\n a\n+b\n');
  assert.equal(unifiedDiff('a\nb\n', 'b\n'), '--- running\n+++ candidate\n@@ -1,2 +1 @@\n-a\n b\n');
  assert.equal(unifiedDiff('', 'a\n'), '--- running\n+++ candidate\n@@ -0,0 +1 @@\n+a\n');
});

test('applying the hunks to the old text gives the new one (random edits)', () => {
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let round = 0; round < 50; round++) {
    const before = lines(40, (i) => `l${i % 7}`).split('\n').slice(0, -1);
    const after = [...before];
    for (let edit = 0; edit < 5; edit++) {
      const at = random(after.length + 1);
      if (random(2) === 0) after.splice(at, 1);
      else after.splice(at, 0, `new ${round}.${edit}`);
    }
    const diff = unifiedDiff(`${before.join('\n')}\n`, `${after.join('\n')}\n`);
    assert.deepEqual(apply(before, diff), after, diff);
  }
});

/** Applies a unified diff's hunks to `lines`. */
function apply(lines: readonly string[], diff: string): string[] {
  if (diff === '') return [...lines];
  const out: string[] = [];
  let at = 0;
  for (const hunk of diff.split(/^(?=@@ )/m).slice(1)) {
    const [head, ...body] = hunk.replace(/\n$/, '').split('\n');
    const start = Number(/^@@ -(\d+)/.exec(head as string)?.[1]);
    const from = /^@@ -\d+,0 /.test(head as string) ? start : start - 1;
    out.push(...lines.slice(at, from));
    at = from;
    for (const line of body) {
      if (line.startsWith(' ')) {
        assert.equal(lines[at], line.slice(1));
        out.push(line.slice(1));
        at++;
      } else if (line.startsWith('-')) {
        assert.equal(lines[at], line.slice(1));
        at++;
      } else out.push(line.slice(1));
    }
  }
  out.push(...lines.slice(at));
  return out;
}

test('a long file with one changed line: one small hunk (the size bound applies to the changed part only)', () => {
  const before = lines(6000);
  const after = before.replace('line 3000\n', 'line three thousand\n');
  assert.equal(unifiedDiff(before, after), ['--- running', '+++ candidate', '@@ -2998,7 +2998,7 @@', ' line 2997', ' line 2998', ' line 2999', '-line 3000', '+line three thousand', ' line 3001', ' line 3002', ' line 3003', ''].join('\n'));
  // A changed part past the bound is one replaced block, still between the common lines.
  const rewritten = `line 0\n${lines(5000, (i) => `new ${i}`)}line end\n`;
  const replaced = unifiedDiff(`line 0\n${lines(5000, (i) => `old ${i}`)}line end\n`, rewritten);
  assert.equal(replaced.match(/^@@ /gm)?.length, 1);
  assert.match(replaced, /^@@ -1,5002 \+1,5002 @@\n line 0\n-old 0\n/m);
  assert.match(replaced, /\n-old 4999\n\+new 0\n/);
  assert.match(replaced, /\n\+new 4999\n line end\n$/);
});
