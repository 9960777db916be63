/** Contents of a list file shared by another instance (state.redis): the newest copy wins. */
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { IpListFile } from '../../src/middleware/ip-filter/ip-list-file.ts';
import { tempDir } from '../helpers/process.ts';

test('contents from another instance are used only when newer than this copy, different, and valid', async (t) => {
  const path = join(await tempDir(t), 'deny.txt');
  writeFileSync(path, '10.0.0.1\n');
  const written = new Date(Date.now() - 3600_000);
  utimesSync(path, written, written);
  let changes = 0;
  const warnings: string[] = [];
  const file = new IpListFile(path, () => changes++, (level, _fields, message) => {
    if (level === 'warn') warnings.push(message);
  });
  t.after(() => file.close());
  const at = file.changedAt;
  assert.equal(at, written.getTime());

  file.applyShared('10.0.0.2\n', at - 1000);
  file.applyShared('10.0.0.2\n', at);
  assert.ok(file.current.has('10.0.0.1') && !file.current.has('10.0.0.2'), 'an older or same-time copy is ignored');
  assert.equal(file.version, 0);

  file.applyShared('10.0.0.2\n', at + 1000);
  assert.ok(file.current.has('10.0.0.2') && !file.current.has('10.0.0.1'), 'a newer copy replaces the contents');
  assert.deepEqual([file.version, changes, file.changedAt, file.text], [1, 1, at + 1000, '10.0.0.2\n']);

  file.applyShared('10.0.0.2\n', at + 2000);
  assert.equal(file.version, 1, 'the same contents again change nothing');

  file.applyShared('not an address\n', at + 3000);
  assert.ok(file.current.has('10.0.0.2'), 'a copy that does not parse is not applied');
  assert.deepEqual([file.version, changes, file.changedAt], [1, 1, at + 1000]);
  assert.deepEqual(warnings, ['IP list from another instance not applied']);
});
