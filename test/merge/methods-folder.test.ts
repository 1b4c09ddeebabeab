// src/merge/methods/ holds methods only: every file there declares a method the registry lists
// (shared routines live beside it: generalized-task-arithmetic.ts, sparsify.ts, peft/, lora/).
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { MERGE_METHODS } from '../../src/merge/index.ts';

test('every file in src/merge/methods declares one registered method (beside its own math)', async () => {
  const dir = path.resolve(import.meta.dirname, '../../src/merge/methods');
  const files = (await readdir(dir)).filter((name) => name.endsWith('.ts')).sort();
  assert.ok(files.length >= 20, `${files.length} method files`);
  const registered = new Set<unknown>(MERGE_METHODS);
  const seen = new Set<unknown>();
  for (const file of files) {
    const exports = Object.values(await import(pathToFileURL(path.join(dir, file)).href));
    const methods = exports.filter((value) => registered.has(value));
    assert.equal(
      methods.length,
      1,
      `${file} exports ${methods.length} registered methods (and ${exports.length} exports)`,
    );
    seen.add(methods[0]);
  }
  assert.equal(seen.size, MERGE_METHODS.length, 'each registered method comes from its own file');
});
