// Parameter resolution as mergekit's config.py and plan.py do it, including the three held-back
// 4-layer cases (gradient_slerp, gradient_ties, filter_task_arithmetic) built here from the README.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { MergePlanError, RecipeError } from '../../src/merge/errors.ts';
import { closePlan, executeMerge, type MergePlan, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { countLayers, gradientPosition, layerIndexOf } from '../../src/merge/layers.ts';
import { evaluateSetting, interpolateGradient } from '../../src/merge/parameters.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { compareTensors, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';
import { referenceGta } from './mergekit-reference.ts';

test('gradients interpolate in float64 exactly as evaluate_setting', () => {
  assert.equal(interpolateGradient([1.0, 0.5], 1 / 3), 0.8333333333333334);
  assert.equal(interpolateGradient([0, 0.5, 0.3, 0.7, 1], 1 / 3), 0.43333333333333335);
  assert.equal(interpolateGradient([0, 0.5, 0.3, 0.7, 1], 2 / 3), 0.5666666666666665);
  assert.equal(interpolateGradient([0.2, 1.0], 2 / 3), 0.7333333333333333);
  assert.equal(interpolateGradient([0.3, 0.1], 1 / 3), 0.23333333333333334);
  assert.equal(interpolateGradient([7], 0.5), 7);
});

test('filter lists: first substring match, "*" only as a whole, no globbing; booleans become numbers', () => {
  const list = [
    { filter: 'layers.*.mlp', value: 9 },
    { filter: 'norm', value: 0.15 },
    { filter: '*', value: [0.3, 0.1] },
  ];
  assert.equal(evaluateSetting('model.layers.0.mlp.up_proj.weight', list, 0), 0.3);
  assert.equal(evaluateSetting('model.norm.weight', list, 0), 0.15);
  assert.equal(evaluateSetting('model.layers.2.input_layernorm.weight', list, 2 / 3), 0.15);
  assert.equal(evaluateSetting('x', [{ filter: 'mlp', value: 1 }], 0), undefined);
  assert.equal(evaluateSetting('x', true, 0), 1);
  assert.equal(evaluateSetting('x', [{ value: false }], 0), 0);
});

test('layer indices and t: idx/(n-1), 1 for a single layer, 0 outside layers', () => {
  assert.equal(layerIndexOf('model.layers.12.mlp.up_proj.weight'), 12);
  assert.equal(layerIndexOf('bert.encoder.layer.3.attention.self.query.weight'), 3);
  assert.equal(layerIndexOf('vit.encoder.layer.0.output.dense.weight'), 0);
  assert.equal(layerIndexOf('transformer.h.5.attn.c_attn.weight'), 5);
  assert.equal(layerIndexOf('base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight'), 1);
  assert.equal(layerIndexOf('model.embed_tokens.weight'), undefined);
  assert.equal(gradientPosition('model.layers.3.x.weight', 4), 1);
  assert.equal(gradientPosition('model.layers.1.x.weight', 4), 0.3333333333333333);
  assert.equal(gradientPosition('model.layers.0.x.weight', 1), 1);
  assert.equal(gradientPosition('lm_head.weight', 4), 0);
  assert.equal(countLayers({ num_hidden_layers: 4 }, []), 4);
  assert.equal(countLayers(undefined, ['model.layers.0.a', 'model.layers.6.a', 'lm_head.weight']), 7);
});

// The 4-layer checkpoint set of the README (values are arbitrary; shapes and names are the case's).
const LAYER_TENSORS = (i: number): Array<[string, number[]]> => [
  [`model.layers.${i}.input_layernorm.weight`, [32]],
  [`model.layers.${i}.self_attn.q_proj.weight`, [32, 32]],
  [`model.layers.${i}.self_attn.v_proj.weight`, [32, 32]],
  [`model.layers.${i}.mlp.up_proj.weight`, [48, 32]],
];
const SPECS: Array<[string, number[]]> = [
  ['model.embed_tokens.weight', [64, 32]],
  ...[0, 1, 2, 3].flatMap(LAYER_TENSORS),
  ['model.norm.weight', [32]],
  ['lm_head.weight', [64, 32]],
];

let dir: ReturnType<typeof tempDir>;
before(async () => {
  dir = tempDir('lorafuse-4layer');
  let state = 20240611;
  const next = () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32 - 0.5;
  };
  const shared = SPECS.map(([, shape]) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => next() * 0.04),
  );
  const base = SPECS.map(([, shape]) =>
    Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => next() * 0.1),
  );
  const coefs = [1.0, 0.5, 1.5];
  for (const [m, file] of ['base', 'm0', 'm1', 'm2'].entries()) {
    const tensors = SPECS.map(([name, shape], k) => ({
      name,
      dtype: 'F32' as const,
      shape,
      data: m === 0 ? base[k] : base[k].map((v, i) => v + coefs[m - 1] * shared[k][i] + next() * 0.02),
    }));
    await writeSafetensors(path.join(dir.dir, `${file}.safetensors`), tensors);
  }
  writeFileSync(
    path.join(dir.dir, 'config.json'),
    JSON.stringify({
      architectures: ['LlamaForCausalLM'],
      model_type: 'llama',
      num_hidden_layers: 4,
      hidden_size: 32,
    }),
  );
});
after(() => dir.remove());

async function plan(recipe: Record<string, unknown>): Promise<MergePlan> {
  return planMerge(parseRecipe(recipe), fileResolver(dir.dir));
}

function byLayer(
  p: MergePlan,
  suffix: string,
  read: (t: MergePlan['tensors'][number]) => unknown,
): unknown[] {
  return [0, 1, 2, 3].map((i) => read(p.tensors.find((t) => t.name === `model.layers.${i}.${suffix}`)!));
}

test('gradient_slerp: t per layer from a filter list of gradients', async () => {
  const p = await plan({
    merge_method: 'slerp',
    base_model: 'base.safetensors',
    models: [{ model: 'base.safetensors' }, { model: 'm0.safetensors' }],
    parameters: {
      t: [
        { filter: 'self_attn', value: [0, 0.5, 0.3, 0.7, 1] },
        { filter: 'mlp', value: [1, 0.5, 0.7, 0.3, 0] },
        { value: 0.5 },
      ],
    },
  });
  try {
    assert.equal(p.layerCount, 4);
    assert.equal(p.layerCountSource, 'config.json');
    const selfAttn = [0, 0.43333333333333335, 0.5666666666666665, 1];
    assert.deepEqual(
      byLayer(p, 'self_attn.q_proj.weight', (t) => t.global.t),
      selfAttn,
    );
    assert.deepEqual(
      byLayer(p, 'self_attn.v_proj.weight', (t) => t.global.t),
      selfAttn,
    );
    assert.deepEqual(
      byLayer(p, 'mlp.up_proj.weight', (t) => t.global.t),
      [1, 0.5666666666666667, 0.43333333333333335, 0],
    );
    for (const name of [
      'model.embed_tokens.weight',
      'model.norm.weight',
      'lm_head.weight',
      'model.layers.2.input_layernorm.weight',
    ]) {
      assert.equal(p.tensors.find((t) => t.name === name)!.global.t, 0.5, name);
    }
  } finally {
    await closePlan(p);
  }
});

const gradientTies = {
  merge_method: 'ties',
  base_model: 'base.safetensors',
  models: [
    { model: 'm0.safetensors', parameters: { weight: [1.0, 0.5], density: [0.2, 0.8] } },
    { model: 'm1.safetensors', parameters: { weight: 0.7, density: 0.5 } },
    { model: 'm2.safetensors', parameters: { weight: 0.4, density: 0.6 } },
  ],
  parameters: { normalize: true },
};

test('gradient_ties: per-layer weights and densities; t = 0 outside layers', async () => {
  const p = await plan(gradientTies);
  try {
    assert.deepEqual(
      byLayer(p, 'self_attn.q_proj.weight', (t) => t.perModel[0].weight),
      [1.0, 0.8333333333333334, 0.6666666666666667, 0.5],
    );
    assert.deepEqual(
      byLayer(p, 'mlp.up_proj.weight', (t) => t.perModel[0].density),
      [0.2, 0.4, 0.6, 0.8],
    );
    for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) {
      const t = p.tensors.find((x) => x.name === name)!;
      assert.deepEqual([t.perModel[0].weight, t.perModel[0].density], [1.0, 0.2], name);
      assert.deepEqual(t.perModel[1], { weight: 0.7, density: 0.5 });
    }
    assert.equal(p.tensors[0].global.normalize, 1);
    assert.deepEqual(
      p.inputs.map((i) => i.ref),
      ['m0.safetensors', 'm1.safetensors', 'm2.safetensors', 'base.safetensors'],
    );
    // And the merged tensors follow: layer 1's q_proj keeps int(0.4·1024) = 409 entries of m0.
    const out = path.join(dir.dir, 'out-ties');
    await executeMerge(p, { outDir: out });
    const merged = await readGoldenTensors(path.join(out, 'model.safetensors'));
    const inputs = await Promise.all(
      ['base', 'm0', 'm1', 'm2'].map((f) => readGoldenTensors(path.join(dir.dir, `${f}.safetensors`))),
    );
    for (const t of p.tensors) {
      const expected = referenceGta(
        inputs[0].get(t.name)!.data,
        t.perModel.slice(0, 3).map((params, k) => ({
          data: inputs[k + 1].get(t.name)!.data,
          weight: Math.fround(params.weight as number),
          density: params.density as number,
        })),
        { sparsify: 'magnitude', consensus: true, normalize: true },
      );
      assert.equal(
        compareTensors(merged.get(t.name)!.data, Float32Array.from(expected), { rtol: 1e-5, atol: 1e-6 }),
        null,
        t.name,
      );
    }
  } finally {
    await closePlan(p);
  }
});

test('filter_task_arithmetic: per-model filter lists, top-level fallback, a lambda gradient', async () => {
  const p = await plan({
    merge_method: 'task_arithmetic',
    base_model: 'base.safetensors',
    models: [
      {
        model: 'm0.safetensors',
        parameters: {
          weight: [{ filter: 'mlp', value: 0.9 }, { filter: 'self_attn', value: [0.2, 1.0] }, { value: 0.5 }],
        },
      },
      {
        model: 'm1.safetensors',
        parameters: {
          weight: [
            { filter: 'v_proj', value: 0.8 },
            { filter: 'self_attn', value: 0.6 },
            { filter: 'mlp', value: 0.1 },
          ],
        },
      },
      {
        model: 'm2.safetensors',
        parameters: {
          weight: [
            { filter: 'norm', value: 0.15 },
            { filter: '*', value: [0.3, 0.1] },
          ],
        },
      },
    ],
    parameters: { weight: 0.25, lambda: [0.6, 1.2] },
  });
  try {
    const w = (model: number) => (t: MergePlan['tensors'][number]) => t.perModel[model].weight;
    const get = (name: string) => p.tensors.find((t) => t.name === name)!;
    assert.deepEqual(byLayer(p, 'mlp.up_proj.weight', w(0)), [0.9, 0.9, 0.9, 0.9]);
    const m0Attn = [0.2, 0.4666666666666667, 0.7333333333333333, 1.0];
    assert.deepEqual(byLayer(p, 'self_attn.q_proj.weight', w(0)), m0Attn);
    assert.deepEqual(byLayer(p, 'self_attn.v_proj.weight', w(0)), m0Attn);
    assert.equal(get('lm_head.weight').perModel[0].weight, 0.5);
    assert.deepEqual(byLayer(p, 'self_attn.v_proj.weight', w(1)), [0.8, 0.8, 0.8, 0.8]);
    assert.deepEqual(byLayer(p, 'self_attn.q_proj.weight', w(1)), [0.6, 0.6, 0.6, 0.6]);
    assert.deepEqual(byLayer(p, 'mlp.up_proj.weight', w(1)), [0.1, 0.1, 0.1, 0.1]);
    for (const name of [
      'model.embed_tokens.weight',
      'model.layers.1.input_layernorm.weight',
      'model.norm.weight',
      'lm_head.weight',
    ]) {
      assert.equal(get(name).perModel[1].weight, 0.25, name);
    }
    assert.deepEqual(byLayer(p, 'input_layernorm.weight', w(2)), [0.15, 0.15, 0.15, 0.15]);
    assert.equal(get('model.norm.weight').perModel[2].weight, 0.15);
    assert.deepEqual(
      byLayer(p, 'mlp.up_proj.weight', w(2)),
      [0.3, 0.23333333333333334, 0.16666666666666669, 0.1],
    );
    assert.equal(get('model.embed_tokens.weight').perModel[2].weight, 0.3);
    assert.equal(get('lm_head.weight').perModel[2].weight, 0.3);
    assert.deepEqual(
      byLayer(p, 'self_attn.q_proj.weight', (t) => t.global.lambda),
      [0.6, 0.8, 1.0, 1.2],
    );
    for (const name of ['model.embed_tokens.weight', 'model.norm.weight', 'lm_head.weight']) {
      assert.equal(get(name).global.lambda, 0.6);
    }
    // The base gets the top-level weight too (top-level values are defaults for every input).
    assert.equal(get('lm_head.weight').perModel[3].weight, 0.25);
  } finally {
    await closePlan(p);
  }
});

test('global parameters under a model are ignored (slerp t only there is missing)', async () => {
  await assert.rejects(
    plan({
      merge_method: 'slerp',
      base_model: 'base.safetensors',
      models: [{ model: 'base.safetensors' }, { model: 'm0.safetensors', parameters: { t: 0.5 } }],
    }),
    (e: unknown) =>
      e instanceof MergePlanError &&
      e.code === 'missing_parameter' &&
      /Missing required parameter t/.test(e.message),
  );
  const p = await plan({
    merge_method: 'task_arithmetic',
    base_model: 'base.safetensors',
    models: [{ model: 'm0.safetensors', parameters: { weight: 1, lambda: 5 } }],
  });
  try {
    assert.equal(p.tensors[0].global.lambda, 1);
    assert.ok(p.warnings.some((w) => w.includes('models[0].parameters.lambda')));
  } finally {
    await closePlan(p);
  }
});

test('a single {filter, value} mapping is "Unexpected setting value"', () => {
  assert.throws(
    () =>
      parseRecipe({
        merge_method: 'linear',
        models: [{ model: 'a', parameters: { weight: { filter: 'mlp', value: 1 } } }],
      }),
    (e: unknown) =>
      e instanceof RecipeError &&
      /Unexpected setting value/.test(e.message) &&
      e.path === 'models[0].parameters.weight',
  );
});
