// Every setting is parsed and range-checked in src/config.ts and handed down (issue 12): the libraries under the
// entry points read no environment of their own. A direct read there is how LORAFUSE_MERGE_WORKERS=abc once became
// NaN workers, and how LD_LIBRARY_PATH was read inside the model runtime.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const SRC = path.resolve(import.meta.dirname, '../../src');
/** Below the entry points (src/cli, workers/) and src/config.ts, which reads the environment for all of them. */
// (src/store is left out: it sets the AWS SDK's own variable that silences a warning, a write, not a setting.)
const LIBRARIES = ['api', 'client', 'eval', 'merge', 'model', 'queue', 'tensors', 'webhooks'];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

test('the libraries under the entry points read no process.env: settings come from src/config.ts', () => {
  const files = LIBRARIES.flatMap((library) => sourceFiles(path.join(SRC, library)));
  assert.ok(files.length > 100, `found only ${files.length} source files`);
  const reads = files.flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .flatMap((line, index) =>
        /process\.env\b/.test(line) ? [`${path.relative(SRC, file)}:${index + 1}: ${line.trim()}`] : [],
      ),
  );
  assert.deepEqual(reads, []);
});
