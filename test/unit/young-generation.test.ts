import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';

const MODULE = new URL('../../src/core/young-generation.ts', import.meta.url).href;

/** Runs keepYoungGenerationSmall() in a fresh Node with `flags`, churns young objects, and reports. */
function probe(flags: string[]): { kept: boolean; newSpace: number; gcExposed: boolean } {
  const script = `
    import v8 from 'node:v8';
    const { keepYoungGenerationSmall } = await import(${JSON.stringify(MODULE)});
    // Grown first, as loading Gatehouse's modules grows it.
    let live = [];
    for (let i = 0; i < 3e6; i++) { live.push({ i }); if (live.length > 200000) live = []; }
    const kept = keepYoungGenerationSmall();
    live = [];
    for (let i = 0; i < 3e6; i++) { live.push({ i }); if (live.length > 200000) live = []; }
    const newSpace = v8.getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size;
    const gcExposed = (await import('node:vm')).runInNewContext('typeof gc') !== 'undefined';
    process.stdout.write(JSON.stringify({ kept, newSpace, gcExposed }));`;
  const out = execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { env: { ...process.env, NODE_OPTIONS: '' } });
  return JSON.parse(out.toString()) as { kept: boolean; newSpace: number; gcExposed: boolean };
}

test('the young generation goes back to its initial size and stays there under a churn that grows it tenfold by default', () => {
  const tuned = probe([]);
  assert.equal(tuned.kept, true);
  assert.ok(tuned.newSpace <= 4 * 1024 * 1024, `new space ${tuned.newSpace} bytes`);
  assert.equal(tuned.gcExposed, false, 'gc() is not left exposed to new contexts');
});

test("an operator's own young generation setting is left alone", () => {
  const own = probe(['--max-semi-space-size=16']);
  assert.equal(own.kept, false);
  assert.ok(own.newSpace > 4 * 1024 * 1024, `new space ${own.newSpace} bytes: grown as V8 would`);
});
