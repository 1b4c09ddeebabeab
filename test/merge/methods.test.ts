// Method-level checks that the golden cases do not cover: passthrough, DELLA's rank-dependent keep
// probabilities, and linear's missing zero guard surfacing as a diagnostic.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import {
  closePlan,
  executeMerge,
  getMethod,
  MergePlanError,
  parseRecipe,
  planMerge,
} from '../../src/merge/index.ts';
import type { TensorMergeMethod } from '../../src/merge/method.ts';
import { KeyedRandomStream, randomForTensor } from '../../src/merge/random.ts';
import { sparsifyDella } from '../../src/merge/sparsify.ts';
import { goldenCaseDir } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

const tensor = (method: string) => getMethod(method) as TensorMergeMethod;

test('passthrough copies its one input, times scale when given', () => {
  const data = new Float32Array([1, -2, 3]);
  const run = (params: Record<string, number>) =>
    tensor('passthrough').mergeTensor({
      tensorName: 'x',
      shape: [3],
      inputs: [{ model: 'm', isBase: false, data, params }],
      params: {},
      random: randomForTensor(0, 'x'),
    });
  assert.deepEqual([...run({})], [1, -2, 3]);
  assert.deepEqual([...run({ scale: 0.5 })], [0.5, -1, 1.5]);
  assert.deepEqual([...data], [1, -2, 3]);
});

test('DELLA keeps larger entries of a row more often; the mean keep rate is the density', () => {
  const cols = 11;
  const values = Float32Array.from({ length: cols }, (_, c) => (c % 2 ? -1 : 1) * (c + 1));
  const kept = new Array(cols).fill(0);
  const draws = 4000;
  for (let d = 0; d < draws; d++) {
    const delta = values.slice();
    sparsifyDella(delta, [1, cols], 0.5, 0.2, false, new KeyedRandomStream(d, 'della', 'row'));
    delta.forEach((v, c) => {
      if (v !== 0) kept[c]++;
    });
  }
  // Rank r of c keeps with p = 0.3 + 0.4·(r−1)/(c−1): 0.3 for the smallest |x|, 0.7 for the largest.
  for (let c = 0; c < cols; c++) {
    const p = 0.3 + (0.4 * c) / (cols - 1);
    const sigma = Math.sqrt((p * (1 - p)) / draws);
    assert.ok(Math.abs(kept[c] / draws - p) < 5 * sigma, `column ${c}: ${kept[c] / draws} vs ${p}`);
  }
  assert.throws(
    () => sparsifyDella(values.slice(), [cols], 0.5, 0.6, false, new KeyedRandomStream(0, 'd', 'r')),
    /epsilon/,
  );
});

test('della and della_linear run end to end with their defaults (normalize/rescale true; linear: normalize false)', async () => {
  assert.deepEqual(
    ['della', 'della_linear'].map((name) => {
      const specs = tensor(name).parameters;
      return [
        specs.find((s) => s.name === 'normalize')!.default,
        specs.find((s) => s.name === 'rescale')!.default,
      ];
    }),
    [
      [true, true],
      [false, true],
    ],
  );
  const dir = goldenCaseDir('mergekit_ties');
  const out = tempDir('lorafuse-della');
  try {
    for (const method of ['della', 'della_linear']) {
      const plan = await planMerge(
        parseRecipe({
          merge_method: method,
          base_model: 'base.safetensors',
          models: ['m0', 'm1'].map((m) => ({
            model: `${m}.safetensors`,
            parameters: { weight: 1, density: 0.5 },
          })),
        }),
        fileResolver(dir),
      );
      try {
        const result = await executeMerge(plan, { outDir: path.join(out.dir, method) });
        assert.deepEqual(result.files, ['model.safetensors']);
      } finally {
        await closePlan(plan);
      }
    }
  } finally {
    out.remove();
  }
});

test('linear with a zero weight sum is refused at plan time; non-finite output is still reported', async () => {
  const recipe = (normalize: boolean) =>
    parseRecipe({
      merge_method: 'linear',
      models: [
        { model: 'm0.safetensors', parameters: { weight: 1 } },
        { model: 'm1.safetensors', parameters: { weight: -1 } },
      ],
      parameters: { normalize },
    });
  await assert.rejects(
    planMerge(recipe(true), fileResolver(goldenCaseDir('mergekit_linear'))),
    (e: unknown) => e instanceof MergePlanError && e.code === 'invalid_parameter' && e.parameter === 'weight',
  );
  // The executor's own guard (a method that writes inf/NaN anyway): normalize forced on after planning.
  const plan = await planMerge(recipe(false), fileResolver(goldenCaseDir('mergekit_linear')));
  for (const tensor of plan.tensors) if (tensor.global) tensor.global.normalize = true;
  const out = tempDir('lorafuse-linear');
  try {
    const result = await executeMerge(plan, { outDir: path.join(out.dir, 'o') });
    const nonFinite = result.diagnostics?.nonFiniteValues as Record<string, number>;
    assert.equal(nonFinite['lm_head.weight'], 50 * 32);
  } finally {
    await closePlan(plan);
    out.remove();
  }
});
