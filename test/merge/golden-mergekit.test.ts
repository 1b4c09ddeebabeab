// The mergekit golden cases of the task-vector family and linear, run end to end through the CLI
// command on the case's own recipe.yaml and compared with the case's tolerance.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { runMergeCommand } from '../../src/cli/merge-command.ts';
import { compareTensors, goldenCaseDir, readCaseJson, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

const CASES = ['mergekit_linear', 'mergekit_task_arithmetic', 'mergekit_ties', 'mergekit_breadcrumbs'];

for (const name of CASES) {
  test(`${name} matches the reference within the case's tolerance`, async () => {
    const caseJson = readCaseJson(name);
    const out = tempDir('lorafuse-golden');
    try {
      const outDir = path.join(out.dir, 'merged');
      const code = await runMergeCommand([path.join(goldenCaseDir(name), 'recipe.yaml'), '--out', outDir]);
      assert.equal(code, 0);
      const actual = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
      const expected = await readGoldenTensors(path.join(goldenCaseDir(name), 'expected.safetensors'));
      assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
      for (const [tensor, e] of expected) {
        const a = actual.get(tensor)!;
        assert.deepEqual(a.shape, e.shape);
        assert.equal(compareTensors(a.data, e.data, caseJson.tolerance), null, `${name} ${tensor}`);
      }
    } finally {
      out.remove();
    }
  });
}
