import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const MODULE = new URL('../../src/core/body-memory.ts', import.meta.url).href;

/** Runs `body` in a fresh Node with --trace-gc after importing the module; returns its output. */
function run(body: string): string {
  const script = `
    import vm from 'node:vm';
    const { noteBodyBytes, SCAVENGE_EVERY } = await import(${JSON.stringify(MODULE)});
    console.log('start');
    ${body}
    console.log('exposed:' + vm.runInNewContext('typeof gc'));`;
  const out = execFileSync(process.execPath, ['--trace-gc', '--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: '' } });
  return out.toString().slice(out.toString().indexOf('start'));
}

test('a scavenge after every SCAVENGE_EVERY bytes of body, and gc() left unexposed', () => {
  const out = run('noteBodyBytes(SCAVENGE_EVERY - 1); console.log("below"); noteBodyBytes(1); console.log("at"); noteBodyBytes(SCAVENGE_EVERY); console.log("again");');
  const between = (from: string, to: string) => out.slice(out.indexOf(from), out.indexOf(to));
  assert.doesNotMatch(between('start', 'below'), /Scavenge/, 'nothing below the mark');
  assert.match(between('below', 'at'), /Scavenge/, 'one at the mark');
  assert.match(between('at', 'again'), /Scavenge/, 'and at the next');
  assert.match(out, /exposed:undefined/);
});
