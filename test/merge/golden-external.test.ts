// Golden cases from a fuller folder outside the repository (LORAFUSE_GOLDEN_DIR, else ../shared/golden):
// every mergekit case with an expected tensor is merged by the CLI command on its own recipe and compared
// at its tolerance, including cases held back from the copy in test/fixtures/golden; cases present in
// both must be byte-identical to the copy. Without such a folder the suite is skipped with the reason.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runMergeCommand } from '../../src/cli/merge-command.ts';
import { compareTensors, externalGoldenDir, GOLDEN_DIR, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

interface IndexCase {
  case: string;
  kind: string;
  recipe?: string | null;
  expected?: string | null;
  tolerance?: { rtol: number; atol: number } | string | null;
}

function readIndex(dir: string): IndexCase[] {
  return (JSON.parse(readFileSync(path.join(dir, 'index.json'), 'utf8')) as { cases: IndexCase[] }).cases;
}

const external = externalGoldenDir();

if (!external) {
  // A test of its own (not a skipped suite), so that "# skipped 1" and the reason show in the summary.
  it('held-back golden cases from a folder outside the repository', {
    skip: 'no golden folder outside the repository (set LORAFUSE_GOLDEN_DIR or place it at ../shared/golden): held-back cases not checked',
  }, () => {});
}

function describeExternal(external: string): void {
  describe(`golden cases in ${external}`, () => {
    const inRepository = new Set(readIndex(GOLDEN_DIR).map((c) => c.case));
    const cases = readIndex(external).filter(
      (c) =>
        c.kind === 'mergekit' && c.recipe && c.expected && typeof c.tolerance === 'object' && c.tolerance,
    );

    it('lists at least the mergekit cases the repository holds', () => {
      const names = new Set(cases.map((c) => c.case));
      for (const c of readIndex(GOLDEN_DIR)) {
        if (c.kind === 'mergekit' && c.expected)
          assert.ok(names.has(c.case), `${c.case} missing in ${external}`);
      }
    });

    for (const golden of cases) {
      const label = inRepository.has(golden.case) ? golden.case : `${golden.case} (held back from the copy)`;
      it(`${label} matches the reference within its tolerance`, async () => {
        const caseDir = path.join(external, golden.case);
        if (inRepository.has(golden.case)) {
          const ours = readFileSync(path.join(GOLDEN_DIR, golden.expected!));
          assert.ok(
            ours.equals(readFileSync(path.join(external, golden.expected!))),
            'copy differs from source',
          );
        }
        const out = tempDir('lorafuse-golden-external');
        try {
          const outDir = path.join(out.dir, 'merged');
          const code = await runMergeCommand([path.join(external, golden.recipe!), '--out', outDir]);
          assert.equal(code, 0);
          const actual = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
          const expected = await readGoldenTensors(path.join(external, golden.expected!));
          assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
          const tolerance = golden.tolerance as { rtol: number; atol: number };
          for (const [tensor, e] of expected) {
            const a = actual.get(tensor)!;
            assert.deepEqual(a.shape, e.shape, `${golden.case} ${tensor}`);
            assert.equal(
              compareTensors(a.data, e.data, tolerance),
              null,
              `${golden.case} ${tensor} (${caseDir})`,
            );
          }
        } finally {
          out.remove();
        }
      });
    }
  });
}

if (external) describeExternal(external);
