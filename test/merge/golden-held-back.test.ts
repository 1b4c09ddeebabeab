// The README's held-back cases of lorafuse-core's methods, written from their description and checked
// against a float64 restatement of mergekit (mergekit-reference.ts) on the golden inputs.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { compareTensors, goldenCaseDir, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';
import { type ReferenceModel, referenceGta, referenceLinear } from './mergekit-reference.ts';

const INPUTS = goldenCaseDir('mergekit_ties');
const TOLERANCE = { rtol: 1e-5, atol: 1e-6 };
const LAYERNORM = 'model.layers.0.input_layernorm.weight';

type Tensors = Map<string, { shape: number[]; data: Float32Array }>;

async function loadInputs(): Promise<Record<'base' | 'm0' | 'm1' | 'm2', Tensors>> {
  const load = (name: string) => readGoldenTensors(path.join(INPUTS, `${name}.safetensors`));
  return { base: await load('base'), m0: await load('m0'), m1: await load('m1'), m2: await load('m2') };
}

async function runRecipe(recipe: Record<string, unknown>): Promise<Tensors> {
  const plan = await planMerge(parseRecipe(recipe), fileResolver(INPUTS));
  const out = tempDir('lorafuse-heldback');
  try {
    const outDir = path.join(out.dir, 'out');
    await executeMerge(plan, { outDir });
    return await readGoldenTensors(path.join(outDir, 'model.safetensors'));
  } finally {
    await closePlan(plan);
    out.remove();
  }
}

function models(params: Array<Record<string, unknown>>): Array<Record<string, unknown>> {
  return params.map((parameters, i) => ({ model: `m${i}.safetensors`, parameters }));
}

function assertClose(actual: Tensors, expected: (name: string) => Float64Array, label: string): void {
  for (const [name, tensor] of actual) {
    const problem = compareTensors(tensor.data, Float32Array.from(expected(name)), TOLERANCE);
    assert.equal(problem, null, `${label} ${name}: ${problem}`);
  }
}

const inputs = loadInputs();

test('linear_unnormalized_weights: weights 2/1/1 with normalize true divide by 4', async () => {
  const x = await inputs;
  const out = await runRecipe({
    merge_method: 'linear',
    models: models([{ weight: 2 }, { weight: 1 }, { weight: 1 }]),
    parameters: { normalize: true },
  });
  const ms = (name: string, weights: number[]) =>
    weights.map((weight, i) => ({ data: x[`m${i}` as 'm0'].get(name)!.data, weight }));
  assertClose(out, (name) => referenceLinear(ms(name, [2, 1, 1]), true), 'linear_unnormalized_weights');
});

test('linear_normalize_false: the plain weighted sum', async () => {
  const x = await inputs;
  const out = await runRecipe({
    merge_method: 'linear',
    models: models([{ weight: 2 }, { weight: 1 }, { weight: 1 }]),
    parameters: { normalize: false },
  });
  const ms = (name: string) =>
    [2, 1, 1].map((weight, i) => ({ data: x[`m${i}` as 'm0'].get(name)!.data, weight }));
  assertClose(out, (name) => referenceLinear(ms(name), false), 'linear_normalize_false');
  // Not the normalised result: the weights sum to 4.
  const q = out.get(LAYERNORM)!.data;
  assert.ok(Math.abs(q[0] - referenceLinear(ms(LAYERNORM), true)[0]) > 1);
});

function gtaModels(
  x: Awaited<typeof inputs>,
  name: string,
  params: Array<Partial<ReferenceModel>>,
): ReferenceModel[] {
  return params.map((p, i) => ({ data: x[`m${i}` as 'm0'].get(name)!.data, weight: p.weight ?? 1, ...p }));
}

test('ties_normalize_false: no division, lambda 1', async () => {
  const x = await inputs;
  const params = [0, 1, 2].map(() => ({ weight: 1, density: 0.3 }));
  const out = await runRecipe({
    merge_method: 'ties',
    base_model: 'base.safetensors',
    models: models(params),
    parameters: { normalize: false, lambda: 1.0 },
  });
  assertClose(
    out,
    (name) =>
      referenceGta(x.base.get(name)!.data, gtaModels(x, name, params), {
        sparsify: 'magnitude',
        consensus: true,
        normalize: false,
      }),
    'ties_normalize_false',
  );
});

test('ties_weighted: weighted sign vote and weight-sum divisor, lambda 0.8', async () => {
  const x = await inputs;
  const params = [
    { weight: 1.0, density: 0.3 },
    { weight: 0.5, density: 0.5 },
    { weight: 0.25, density: 0.7 },
  ];
  const out = await runRecipe({
    merge_method: 'ties',
    base_model: 'base.safetensors',
    models: models(params),
    parameters: { normalize: true, lambda: 0.8 },
  });
  const expected = (name: string) =>
    referenceGta(x.base.get(name)!.data, gtaModels(x, name, params), {
      sparsify: 'magnitude',
      consensus: true,
      normalize: true,
      lambda: 0.8,
    });
  assertClose(out, expected, 'ties_weighted');
  // The case discriminates a weighted vote from an unweighted one: lorafuse must not match the latter.
  const unweighted = referenceGta(
    x.base.get('lm_head.weight')!.data,
    gtaModels(x, 'lm_head.weight', params).map((m) => ({ ...m, weight: 1 })),
    { sparsify: 'magnitude', consensus: true, normalize: true, lambda: 0.8 },
  );
  assert.notEqual(
    compareTensors(out.get('lm_head.weight')!.data, Float32Array.from(unweighted), TOLERANCE),
    null,
  );
});

const crumbs = [
  { weight: 1.0, density: 0.9, gamma: 0.01 },
  { weight: 0.7, density: 0.9, gamma: 0.01 },
  { weight: 0.5, density: 0.9, gamma: 0.01 },
];

test('breadcrumbs_small_gamma with mergekit_compat reproduces mergekit: the 32-element layernorm equals the base', async () => {
  const x = await inputs;
  const out = await runRecipe({
    merge_method: 'breadcrumbs',
    base_model: 'base.safetensors',
    models: models(crumbs),
    parameters: { mergekit_compat: true },
  });
  assert.deepEqual(out.get(LAYERNORM)!.data, x.base.get(LAYERNORM)!.data);
  assertClose(
    out,
    (name) =>
      referenceGta(x.base.get(name)!.data, gtaModels(x, name, crumbs), {
        sparsify: 'outliers',
        normalize: false,
        compat: true,
      }),
    'breadcrumbs_small_gamma (compat)',
  );
});

test('breadcrumbs_small_gamma by default drops nothing at the top when int(gamma·numel) = 0', async () => {
  const x = await inputs;
  const out = await runRecipe({
    merge_method: 'breadcrumbs',
    base_model: 'base.safetensors',
    models: models(crumbs),
  });
  const layernorm = out.get(LAYERNORM)!.data;
  assert.notDeepEqual(layernorm, x.base.get(LAYERNORM)!.data);
  assertClose(
    out,
    (name) =>
      referenceGta(x.base.get(name)!.data, gtaModels(x, name, crumbs), {
        sparsify: 'outliers',
        normalize: false,
      }),
    'breadcrumbs_small_gamma (fixed)',
  );
  // The larger tensors have n_top > 0, where both modes agree.
  const compat = await runRecipe({
    merge_method: 'breadcrumbs',
    base_model: 'base.safetensors',
    models: models(crumbs),
    parameters: { mergekit_compat: true },
  });
  assert.deepEqual(out.get('lm_head.weight')!.data, compat.get('lm_head.weight')!.data);
});

test('breadcrumbs_ties: breadcrumbs parameters with "sum" consensus, normalize false by default', async () => {
  const x = await inputs;
  const params = [
    { weight: 1.0, density: 0.6, gamma: 0.05 },
    { weight: 0.7, density: 0.6, gamma: 0.05 },
    { weight: 0.5, density: 0.6, gamma: 0.05 },
  ];
  const out = await runRecipe({
    merge_method: 'breadcrumbs_ties',
    base_model: 'base.safetensors',
    models: models(params),
  });
  assertClose(
    out,
    (name) =>
      referenceGta(x.base.get(name)!.data, gtaModels(x, name, params), {
        sparsify: 'outliers',
        consensus: true,
        normalize: false,
      }),
    'breadcrumbs_ties',
  );
});
