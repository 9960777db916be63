/** The state directory's file writing: owner-only, atomic, and nothing left behind when it fails. */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { writePrivateFile } from '../../src/core/state-dir.ts';

test('writePrivateFile writes owner-only, and a failed write leaves no temporary file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'gatehouse-state-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'sub', 'key.pem');
  await writePrivateFile(file, 'secret');
  assert.equal(await readFile(file, 'utf8'), 'secret');
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  assert.equal((await stat(join(dir, 'sub'))).mode & 0o777, 0o700);
  // A directory where the file should go: the rename fails.
  const blocked = join(dir, 'sub', 'blocked');
  await mkdir(join(blocked, 'inside'), { recursive: true });
  await assert.rejects(writePrivateFile(blocked, 'x'));
  assert.deepEqual((await readdir(join(dir, 'sub'))).sort(), ['blocked', 'key.pem']);
});
