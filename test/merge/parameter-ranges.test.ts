// Declared parameter ranges and cross-parameter rules: every out-of-range value a recipe sets (per
// model, top level, gradient entry, filter-list value) is refused at plan time naming the model, the
// parameter and the recipe path; the values at the edges of each range are accepted.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver, runMergeCommand } from '../../src/cli/merge-command.ts';
import {
  closePlan,
  describeRange,
  isTrue,
  MERGE_METHODS,
  MergePlanError,
  parseRecipe,
  planMerge,
} from '../../src/merge/index.ts';
import { parameterValueProblem } from '../../src/merge/parameter-ranges.ts';
import { writeSafetensors } from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';
import { writeFileSync } from 'node:fs';

let dir: ReturnType<typeof tempDir>;

// Two layers of a 4×4 weight and a 4-element norm: t is 0 for layer 0 and 1 for layer 1.
const SHAPES: Array<[string, number[]]> = [
  ['model.layers.0.mlp.up_proj.weight', [4, 4]],
  ['model.layers.0.input_layernorm.weight', [4]],
  ['model.layers.1.mlp.up_proj.weight', [4, 4]],
  ['model.layers.1.input_layernorm.weight', [4]],
];

before(async () => {
  dir = tempDir('lorafuse-ranges');
  for (const [file, offset] of [
    ['base.safetensors', 0],
    ['m0.safetensors', 1],
    ['m1.safetensors', 2],
  ] as const) {
    await writeSafetensors(
      path.join(dir.dir, file),
      SHAPES.map(([name, shape]) => ({
        name,
        dtype: 'F32' as const,
        shape,
        data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + offset)),
      })),
    );
  }
});
after(() => dir.remove());

function recipe(method: string, perModel: Record<string, unknown>[], top?: Record<string, unknown>) {
  return {
    merge_method: method,
    base_model: 'base.safetensors',
    models: perModel.map((parameters, i) => ({ model: `m${i}.safetensors`, parameters })),
    ...(top ? { parameters: top } : {}),
  };
}

async function plans(body: Record<string, unknown>): Promise<void> {
  const plan = await planMerge(parseRecipe(body), fileResolver(dir.dir));
  await closePlan(plan);
}

async function refused(
  body: Record<string, unknown>,
  expected: { parameter: string; model?: string; path?: string; tensor?: string; message?: RegExp },
): Promise<void> {
  await assert.rejects(plans(body), (error: unknown) => {
    assert.ok(error instanceof MergePlanError, `expected a MergePlanError, got ${error}`);
    assert.equal(error.code, 'invalid_parameter');
    assert.equal(error.parameter, expected.parameter);
    assert.equal(error.model, expected.model);
    if (expected.path !== undefined) assert.equal(error.path, expected.path);
    if (expected.tensor !== undefined) assert.equal(error.tensor, expected.tensor);
    if (expected.message) assert.match(error.message, expected.message);
    return true;
  });
}

test('the issue’s cases: dare_ties density −1, breadcrumbs gamma −3, ties density 0 and −1, della epsilon 5', async () => {
  await refused(recipe('dare_ties', [{ weight: 1, density: -1 }, { weight: 1 }]), {
    parameter: 'density',
    model: 'm0.safetensors',
    path: 'models[0].parameters.density',
    message: /must be in \(0, 1\]/,
  });
  await refused(recipe('breadcrumbs', [{ weight: 1 }, { weight: 1, gamma: -3 }]), {
    parameter: 'gamma',
    model: 'm1.safetensors',
    path: 'models[1].parameters.gamma',
    message: /must be in \[0, 1\]/,
  });
  for (const density of [0, -1]) {
    await refused(
      recipe('ties', [
        { weight: 1, density },
        { weight: 1, density: 0.5 },
      ]),
      {
        parameter: 'density',
        model: 'm0.safetensors',
      },
    );
  }
  await refused(
    recipe('della', [
      { weight: 1, density: 0.5, epsilon: 5 },
      { weight: 1, density: 0.5 },
    ]),
    {
      parameter: 'epsilon',
      model: 'm0.safetensors',
      message: /must be in \[0, 0\.5\)/,
    },
  );
});

test('top-level, gradient and filter-list values are each checked, with their recipe path', async () => {
  await refused(recipe('ties', [{ weight: 1 }, { weight: 1 }], { density: 1.5 }), {
    parameter: 'density',
    path: 'parameters.density',
  });
  await refused(recipe('ties', [{ weight: 1 }, { weight: 1, density: [0.5, 0, 0.7] }]), {
    parameter: 'density',
    model: 'm1.safetensors',
    path: 'models[1].parameters.density[1]',
  });
  // A filter that matches no tensor of these models is still refused: the recipe is wrong either way.
  await refused(
    recipe('ties', [
      { weight: 1, density: [{ filter: 'no_such_tensor', value: 2 }, { value: 0.5 }] },
      { weight: 1 },
    ]),
    { parameter: 'density', model: 'm0.safetensors', path: 'models[0].parameters.density[0].value' },
  );
  await refused(recipe('slerp', [{}], { t: [0, 1.25] }), { parameter: 't', path: 'parameters.t[1]' });
});

test('cross-parameter rules are checked per tensor at plan time', async () => {
  // density 0.2 ± the default epsilon 0.15 is fine; ± 0.3 leaves (0, 1).
  await plans(
    recipe('della', [
      { weight: 1, density: 0.2 },
      { weight: 1, density: 0.5 },
    ]),
  );
  await refused(
    recipe('della', [
      { weight: 1, density: 0.2, epsilon: 0.3 },
      { weight: 1, density: 0.5 },
    ]),
    {
      parameter: 'epsilon',
      model: 'm0.safetensors',
      message: /density ± epsilon inside \(0, 1\)/,
    },
  );
  // The gradient reaches 0.9 at layer 1 only: 0.9 + 0.15 ≥ 1 there, and the error names that tensor.
  await refused(
    recipe('della', [
      { weight: 1, density: [0.5, 0.9] },
      { weight: 1, density: 0.5 },
    ]),
    {
      parameter: 'epsilon',
      model: 'm0.safetensors',
      tensor: 'model.layers.1.mlp.up_proj.weight',
    },
  );
  // ties keeps int(density·numel): 0.2 of the 4-element norm is nothing (mergekit asserts in the worker).
  await refused(recipe('ties', [{ weight: 1, density: 0.2 }, { weight: 1 }]), {
    parameter: 'density',
    model: 'm0.safetensors',
    tensor: 'model.layers.0.input_layernorm.weight',
  });
  await plans(recipe('ties', [{ weight: 1, density: 0.25 }, { weight: 1 }]));
  await refused(
    {
      merge_method: 'linear',
      models: [0, 1].map((i) => ({ model: `m${i}.safetensors`, parameters: { weight: i ? -2 : 2 } })),
    },
    { parameter: 'weight', message: /sum to 0/ },
  );
  await plans({
    merge_method: 'linear',
    models: [0, 1].map((i) => ({ model: `m${i}.safetensors`, parameters: { weight: i ? -2 : 2 } })),
    parameters: { normalize: false },
  });
});

test('other methods: slerp t, nearswap t, karcher, multislerp eps, sce select_topk, peft densities and ranks', async () => {
  await refused(recipe('slerp', [{}], { t: 1.5 }), { parameter: 't' });
  await refused(recipe('slerp', [{}], { t: -0.1 }), { parameter: 't' });
  await plans(recipe('slerp', [{}], { t: 0 }));
  await plans(recipe('slerp', [{}], { t: 1 }));
  await refused(recipe('nearswap', [{}], { t: 0 }), { parameter: 't', message: /\(0, ∞\)/ });
  await refused(recipe('karcher', [{}, {}], { max_iter: 0 }), { parameter: 'max_iter' });
  await refused(recipe('karcher', [{}, {}], { tol: 0 }), { parameter: 'tol' });
  await refused(recipe('multislerp', [{ weight: 1 }, { weight: 1 }], { eps: 0 }), { parameter: 'eps' });
  await refused(recipe('sce', [{}, {}], { select_topk: 0 }), { parameter: 'select_topk' });
  await plans(recipe('sce', [{}, {}], { select_topk: 1 }));
  // Adapter methods: checked before any input is opened (these adapter paths do not exist).
  const adapters = (top: Record<string, unknown>, method = 'peft_ties_svd') => ({
    merge_method: method,
    models: [
      { adapter: 'a0', parameters: { weight: 1 } },
      { adapter: 'a1', parameters: { weight: 1 } },
    ],
    parameters: top,
  });
  await refused(adapters({ density: 0 }), { parameter: 'density' });
  await refused(adapters({ density: 0.5, svd_rank: 0 }), { parameter: 'svd_rank', message: /\[1, ∞\)/ });
  await refused(adapters({ density: 0.5, svd_clamp: 1.01 }), { parameter: 'svd_clamp' });
  await refused(adapters({ density: 0.5, majority_sign_method: 'vote' }), {
    parameter: 'majority_sign_method',
  });
});

test('one boolean rule: true/false and 1/0, nothing else, read the same way everywhere', async () => {
  for (const bad of [2, 0.5, 'true', -1]) {
    await refused(recipe('ties', [{ weight: 1 }, { weight: 1 }], { normalize: bad }), {
      parameter: 'normalize',
      message: /must be a boolean/,
    });
  }
  for (const good of [true, false, 0, 1])
    await plans(recipe('ties', [{ weight: 1 }, { weight: 1 }], { normalize: good }));
  assert.deepEqual(
    [true, 1, false, 0, undefined].map((v) => isTrue(v)),
    [true, true, false, false, false],
  );
  const flag = { name: 'f', scope: 'global', type: 'boolean', required: false, description: '' } as const;
  assert.equal(parameterValueProblem(flag, 1), undefined);
  assert.match(parameterValueProblem(flag, 'yes') ?? '', /boolean/);
});

test('every fraction, count and tolerance in the registry declares its range; defaults lie inside it', () => {
  const mustHaveRange = new Set([
    'density',
    'gamma',
    'epsilon',
    't',
    'select_topk',
    'svd_rank',
    'svd_clamp',
    'max_iter',
    'tol',
    'eps',
  ]);
  let checked = 0;
  for (const method of MERGE_METHODS) {
    for (const spec of method.parameters) {
      if (mustHaveRange.has(spec.name)) {
        assert.ok(spec.range, `${method.name}.${spec.name} declares no range`);
        checked++;
      }
      if (spec.default !== undefined) {
        assert.equal(
          parameterValueProblem(spec, spec.default),
          undefined,
          `${method.name}.${spec.name} default`,
        );
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} ranged parameters found`);
  assert.equal(describeRange({ min: 0, minExclusive: true, max: 1 }), '(0, 1]');
  assert.equal(describeRange({ min: 1 }), '[1, ∞)');
});

test('lorafuse merge --dry-run refuses an out-of-range value with exit 1 and names model and parameter', async () => {
  const file = path.join(dir.dir, 'bad.yaml');
  writeFileSync(
    file,
    'merge_method: dare_ties\nbase_model: base.safetensors\nmodels:\n  - model: m0.safetensors\n    parameters: {weight: 1, density: -1}\n',
  );
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => {
    written.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  let code: number;
  try {
    code = await runMergeCommand([file, '--dry-run']);
  } finally {
    process.stderr.write = write;
  }
  assert.equal(code, 1);
  assert.match(written.join(''), /density of m0\.safetensors .*must be in \(0, 1\]/);
});
