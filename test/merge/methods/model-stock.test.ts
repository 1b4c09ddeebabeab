import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { TensorInput, TensorMergeContext } from '../../../src/merge/method.ts';
import { modelStock, modelStockMethod } from '../../../src/merge/methods/model-stock.ts';
import { runMergeCommand } from '../../../src/cli/merge-command.ts';
import { tempDir } from '../../helpers/redis.ts';
import { compareTensors, goldenCaseDir, readCaseJson, readGoldenTensors } from '../../helpers/golden.ts';

const input = (model: string, data: Float32Array, isBase: boolean): TensorInput => ({
  model,
  data,
  isBase,
  params: {},
});

function context(inputs: TensorInput[], shape: number[], filterWise = false): TensorMergeContext {
  return {
    tensorName: 'x',
    shape,
    inputs,
    params: { filter_wise: filterWise },
    random: () => {
      throw new Error('no random');
    },
  };
}

test('golden mergekit_model_stock: tensors within rtol 1e-5, atol 2e-6; cos and t as per_tensor', async () => {
  const dir = goldenCaseDir('mergekit_model_stock');
  const caseJson = readCaseJson('mergekit_model_stock');
  const [base, m0, m1, m2, expected] = await Promise.all(
    ['base', 'm0', 'm1', 'm2', 'expected'].map((f) => readGoldenTensors(path.join(dir, `${f}.safetensors`))),
  );
  assert.equal(expected.size, 4);
  for (const [name, want] of expected) {
    // mergekit's order: the listed models, then the unlisted base last.
    const inputs = [
      input('m0', m0.get(name)!.data, false),
      input('m1', m1.get(name)!.data, false),
      input('m2', m2.get(name)!.data, false),
      input('base', base.get(name)!.data, true),
    ];
    const got = modelStockMethod.mergeTensor(context(inputs, want.shape));
    assert.equal(compareTensors(got, want.data, { rtol: 1e-5, atol: 2e-6 }), null, name);
    const detail = modelStock(
      base.get(name)!.data,
      [m0, m1, m2].map((m) => m.get(name)!.data),
      want.shape,
      false,
    );
    assert.ok(Math.abs(detail.cosTheta[0] - caseJson.per_tensor[name].cos_theta[0]) < 1e-6);
    assert.ok(Math.abs(detail.t[0] - caseJson.per_tensor[name].t[0]) < 1e-5);
  }
});

function random(n: number, seed: number, scale = 1): Float32Array {
  const r = seededStream(seed);
  return Float32Array.from({ length: n }, () => scale * gaussian(r));
}

/** A float64 restatement over one set of vectors: mean pairwise cosine, t, interpolation. */
function reference(base: number[], models: number[][]): number[] {
  const offsets = models.map((m) => m.map((x, i) => x - base[i]));
  const norm = (v: number[]) => Math.hypot(...v);
  const cosines: number[] = [];
  for (let a = 0; a < offsets.length; a++) {
    for (let b = a + 1; b < offsets.length; b++) {
      const dot = offsets[a].reduce((acc, x, i) => acc + x * offsets[b][i], 0);
      cosines.push(Math.max(-1, Math.min(1, dot / Math.max(norm(offsets[a]) * norm(offsets[b]), 1e-6))));
    }
  }
  const cos = cosines.reduce((a, b) => a + b, 0) / cosines.length;
  const n = models.length;
  const t = (n * cos) / (1 + (n - 1) * cos);
  return base.map((b, i) => t * (models.reduce((acc, m) => acc + m[i], 0) / n) + (1 - t) * b);
}

test('model_stock filter_wise: one cos and one t per row, matching the restatement row by row', () => {
  const rows = 5;
  const cols = 7;
  const base = random(rows * cols, 10);
  const models = [11, 12, 13, 14].map((s, k) => {
    const noise = random(rows * cols, s, 0.1);
    return Float32Array.from(base, (x, i) => x + noise[i] + 0.05 * (k + 1) * ((i % cols) - 3));
  });
  const got = modelStockMethod.mergeTensor(
    context([input('b', base, true), ...models.map((m, i) => input(`m${i}`, m, false))], [rows, cols], true),
  );
  for (let r = 0; r < rows; r++) {
    const slice = (v: Float32Array) => Array.from(v.subarray(r * cols, (r + 1) * cols));
    const want = reference(slice(base), models.map(slice));
    for (let c = 0; c < cols; c++)
      assert.ok(Math.abs(got[r * cols + c] - want[c]) < 1e-5, `row ${r} col ${c}`);
  }
  const detail = modelStock(base, models, [rows, cols], true);
  assert.equal(detail.t.length, rows);
  const whole = modelStock(base, models, [rows, cols], false);
  assert.equal(whole.t.length, 1);
  assert.notDeepEqual(detail.t, [whole.t[0], whole.t[0], whole.t[0], whole.t[0], whole.t[0]]);
});

test('model_stock filter_wise on a 1-D tensor treats it as a single row (same as not filter_wise)', () => {
  const base = random(12, 20);
  const models = [21, 22, 23].map((s) => Float32Array.from(base, (x, i) => x + random(12, s, 0.1)[i]));
  const inputs = [input('b', base, true), ...models.map((m, i) => input(`m${i}`, m, false))];
  const a = modelStockMethod.mergeTensor(context(inputs, [12], true));
  const b = modelStockMethod.mergeTensor(context(inputs, [12], false));
  assert.deepEqual(Array.from(a), Array.from(b));
  const want = reference(
    Array.from(base),
    models.map((m) => Array.from(m)),
  );
  for (let i = 0; i < 12; i++) assert.ok(Math.abs(a[i] - want[i]) < 1e-5);
});

test('model_stock: opposed task vectors give a negative, unclamped t', () => {
  const base = random(30, 30);
  const d = random(30, 31, 0.1);
  const m0 = Float32Array.from(base, (x, i) => x + d[i]);
  const m1 = Float32Array.from(base, (x, i) => x - 0.9 * d[i] + 0.01 * Math.sin(i));
  const detail = modelStock(base, [m0, m1], [30], false);
  assert.ok(detail.t[0] < 0, `t = ${detail.t[0]}`);
});

test('model_stock declares filter_wise and needs a base and two models', () => {
  assert.equal(modelStockMethod.paper, 'https://arxiv.org/abs/2403.19522');
  assert.equal(modelStockMethod.baseModel, 'required');
  assert.equal(modelStockMethod.minModels, 2);
  assert.deepEqual(
    modelStockMethod.parameters.map((p) => [p.name, p.default]),
    [['filter_wise', false]],
  );
  assert.throws(() =>
    modelStockMethod.mergeTensor(
      context([input('b', random(3, 1), true), input('m', random(3, 2), false)], [3]),
    ),
  );
});

test('mergekit_model_stock end to end: the recipe through lorafuse merge (planner order, base, parameters)', async () => {
  const out = tempDir('lorafuse-model-stock');
  try {
    const outDir = path.join(out.dir, 'merged');
    const code = await runMergeCommand([
      path.join(goldenCaseDir('mergekit_model_stock'), 'recipe.yaml'),
      '--out',
      outDir,
    ]);
    assert.equal(code, 0);
    const actual = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
    const expected = await readGoldenTensors(
      path.join(goldenCaseDir('mergekit_model_stock'), 'expected.safetensors'),
    );
    assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
    for (const [name, want] of expected) {
      assert.equal(compareTensors(actual.get(name)!.data, want.data, { rtol: 1e-5, atol: 2e-6 }), null, name);
    }
  } finally {
    out.remove();
  }
});
