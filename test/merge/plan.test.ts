// The planner's checks (each error names what is wrong) and the executor's guarantees: dtype
// handling, config.json, sharding, cancellation and cleanup on failure.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver, runMergeCommand } from '../../src/cli/merge-command.ts';
import {
  closePlan,
  describePlan,
  executeMerge,
  MergeCancelledError,
  MergePlanError,
  parseRecipe,
  parseSize,
  planMerge,
  shardPlanFor,
  subsetPlan,
} from '../../src/merge/index.ts';
import { Checkpoint, type DType, writeSafetensors } from '../../src/tensors/index.ts';
import { tempDir } from '../helpers/redis.ts';

let dir: ReturnType<typeof tempDir>;

interface Spec {
  name: string;
  shape: number[];
  dtype?: DType;
}
const SPECS: Spec[] = [
  { name: 'model.embed_tokens.weight', shape: [16, 8] },
  { name: 'model.layers.0.mlp.up_proj.weight', shape: [12, 8] },
  { name: 'model.layers.0.input_layernorm.weight', shape: [8] },
  { name: 'model.layers.1.mlp.up_proj.weight', shape: [12, 8] },
];

async function writeModel(
  name: string,
  offset: number,
  specs: Spec[] = SPECS,
  extra: Array<Spec & { data: ArrayLike<number> | BigInt64Array }> = [],
) {
  const tensors = specs.map((s) => ({
    name: s.name,
    dtype: s.dtype ?? ('F32' as DType),
    shape: s.shape,
    data: Float32Array.from(
      { length: s.shape.reduce((a, b) => a * b, 1) },
      (_, i) => Math.sin(i + offset) * 0.1 + offset,
    ),
  }));
  await writeSafetensors(path.join(dir.dir, name), [
    ...tensors,
    ...extra.map((e) => ({ name: e.name, dtype: e.dtype!, shape: e.shape, data: e.data as never })),
  ]);
}

before(async () => {
  dir = tempDir('lorafuse-plan');
  await writeModel('base.safetensors', 0, SPECS, [
    { name: 'position_ids', shape: [4], dtype: 'I64', data: BigInt64Array.from([0n, 1n, 2n, 3n]) },
  ]);
  await writeModel('m0.safetensors', 1, SPECS, [
    { name: 'position_ids', shape: [4], dtype: 'I64', data: BigInt64Array.from([0n, 1n, 2n, 3n]) },
  ]);
  await writeModel('m1.safetensors', 2, SPECS, [
    { name: 'position_ids', shape: [4], dtype: 'I64', data: BigInt64Array.from([0n, 1n, 2n, 3n]) },
  ]);
  await writeModel(
    'wide.safetensors',
    3,
    SPECS.map((s, i) => (i === 1 ? { ...s, shape: [12, 9] } : s)),
  );
  await writeModel('partial.safetensors', 4, SPECS.slice(0, 3));
  await writeModel('extra.safetensors', 5, [...SPECS, { name: 'model.extra.weight', shape: [2] }]);
  mkdirSync(path.join(dir.dir, 'folder'));
  await writeModel(path.join('folder', 'model.safetensors'), 6);
  writeFileSync(
    path.join(dir.dir, 'folder', 'config.json'),
    JSON.stringify({ num_hidden_layers: 2, torch_dtype: 'float32' }),
  );
});
after(() => dir.remove());

async function plan(recipe: Record<string, unknown>) {
  return planMerge(parseRecipe(recipe), fileResolver(dir.dir));
}

async function rejectsPlan(
  recipe: Record<string, unknown>,
  code: string,
  check: (e: MergePlanError) => boolean = () => true,
) {
  await assert.rejects(
    plan(recipe),
    (e: unknown) => e instanceof MergePlanError && e.code === code && check(e),
    code,
  );
}

const two = [
  { model: 'm0.safetensors', parameters: { weight: 1 } },
  { model: 'm1.safetensors', parameters: { weight: 1 } },
];

test('plan errors: method, parameters, base model and input counts', async () => {
  await rejectsPlan({ merge_method: 'nope', models: two }, 'unknown_method');
  await rejectsPlan(
    {
      merge_method: 'linear',
      models: [{ model: 'm0.safetensors' }, { model: 'm1.safetensors', parameters: { weight: 1 } }],
    },
    'missing_parameter',
    (e) => e.parameter === 'weight' && /m0.safetensors/.test(e.message) && e.tensor !== undefined,
  );
  await rejectsPlan(
    { merge_method: 'linear', models: [{ model: 'm0.safetensors', parameters: { weight: 'heavy' } }] },
    'invalid_parameter',
    (e) => e.parameter === 'weight' && /must be a number/.test(e.message),
  );
  await rejectsPlan({ merge_method: 'ties', models: two }, 'missing_base_model');
  await rejectsPlan({ merge_method: 'passthrough', models: two }, 'too_many_models');
  await rejectsPlan(
    { merge_method: 'linear', base_model: 'base.safetensors', models: two },
    'unused_base_model',
  );
  // linear takes no base: a listed base_model is an ordinary input and needs its weight like the others.
  await rejectsPlan(
    {
      merge_method: 'linear',
      base_model: 'base.safetensors',
      models: [{ model: 'base.safetensors' }, two[0]],
    },
    'missing_parameter',
    (e) => e.parameter === 'weight' && /base.safetensors/.test(e.message),
  );
  await rejectsPlan({ merge_method: 'peft_linear', models: two }, 'wrong_input_kind');
  await rejectsPlan(
    { merge_method: 'linear', models: [{ model: 'missing.safetensors', parameters: { weight: 1 } }] },
    'input_unavailable',
  );
});

test('plan errors: shapes and tensors missing from some inputs name the tensor', async () => {
  await rejectsPlan(
    { merge_method: 'linear', models: [two[0], { model: 'wide.safetensors', parameters: { weight: 1 } }] },
    'shape_mismatch',
    (e) =>
      e.tensor === 'model.layers.0.mlp.up_proj.weight' &&
      /\[12, 9\]/.test(e.message) &&
      /\[12, 8\]/.test(e.message),
  );
  await rejectsPlan(
    { merge_method: 'linear', models: [two[0], { model: 'partial.safetensors', parameters: { weight: 1 } }] },
    'missing_tensor',
    (e) => e.tensor === 'model.layers.1.mlp.up_proj.weight',
  );
  await rejectsPlan(
    {
      merge_method: 'task_arithmetic',
      base_model: 'base.safetensors',
      models: [{ model: 'extra.safetensors', parameters: { weight: 1 } }],
    },
    'missing_tensor',
    (e) => e.tensor === 'model.extra.weight',
  );
  // With a base, a tensor the base alone has is copied from it.
  const p = await plan({
    merge_method: 'task_arithmetic',
    base_model: 'base.safetensors',
    models: [{ model: 'partial.safetensors', parameters: { weight: 1 } }],
  });
  try {
    const copied = p.tensors.find((t) => t.name === 'model.layers.1.mlp.up_proj.weight')!;
    assert.equal(copied.action, 'copy');
    assert.match(copied.note!, /only in the base/);
  } finally {
    await closePlan(p);
  }
});

test('describePlan lists each tensor with its parameters, the layout and a memory estimate', async () => {
  const p = await plan({
    merge_method: 'ties',
    base_model: 'base.safetensors',
    models: two.map((m) => ({ ...m, parameters: { weight: 1, density: 0.5 } })),
  });
  try {
    const text = describePlan(p);
    assert.match(text, /method: ties/);
    assert.match(text, /\[2\] base.safetensors \(base\)/);
    assert.match(text, /model.layers.1.mlp.up_proj.weight \[12, 8\] F32 ties t=1 global \{ normalize: true/);
    assert.match(text, /m0.safetensors: \{ weight: 1, density: 0.5 \}/);
    assert.match(text, /position_ids \[4\] I64 copy/);
    assert.match(text, /memory estimate: ~/);
    assert.match(text, /layers: 2 \(from tensor names\)/);
  } finally {
    await closePlan(p);
  }
});

test('out_dtype converts float tensors, keeps integer ones, and updates config.json', async () => {
  const p = await plan({
    merge_method: 'linear',
    models: [
      { model: 'folder', parameters: { weight: 1 } },
      { model: 'folder', parameters: { weight: 3 } },
    ],
    out_dtype: 'bfloat16',
  });
  const out = path.join(dir.dir, 'out-bf16');
  try {
    const result = await executeMerge(p, { outDir: out });
    assert.deepEqual(result.files, ['config.json', 'model.safetensors']);
    assert.equal(JSON.parse(readFileSync(path.join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
    const merged = await Checkpoint.openFolder(out);
    assert.equal(merged.info('model.embed_tokens.weight').dtype, 'BF16');
    await merged.close();
  } finally {
    await closePlan(p);
  }
  const q = await plan({
    merge_method: 'linear',
    base_model: 'base.safetensors',
    models: [{ model: 'base.safetensors', parameters: { weight: 1 } }, two[0]],
  });
  const out2 = path.join(dir.dir, 'out-int');
  try {
    await executeMerge(q, { outDir: out2 });
    const merged = await Checkpoint.openFolder(out2);
    const ids = await merged.read('position_ids');
    assert.equal(ids.dtype, 'I64');
    assert.deepEqual([...(ids.data as BigInt64Array)], [0n, 1n, 2n, 3n]);
    await merged.close();
  } finally {
    await closePlan(q);
  }
});

test('size-based shards with an index', async () => {
  const p = await plan({ merge_method: 'linear', models: two });
  const out = path.join(dir.dir, 'out-shards');
  try {
    const result = await executeMerge(p, { outDir: out, maxShardBytes: 600 });
    assert.ok(result.files.includes('model.safetensors.index.json'));
    assert.ok(result.files.filter((f) => /model-\d{5}-of-\d{5}\.safetensors/.test(f)).length > 1);
    const merged = await Checkpoint.openFolder(out);
    assert.equal(merged.names().length, SPECS.length + 1);
    await merged.close();
  } finally {
    await closePlan(p);
  }
});

test('cancelling between tensors throws MergeCancelledError and leaves nothing behind', async () => {
  const p = await plan({ merge_method: 'linear', models: two });
  const out = path.join(dir.dir, 'out-cancel');
  const controller = new AbortController();
  const seen: number[] = [];
  try {
    await assert.rejects(
      executeMerge(p, {
        outDir: out,
        signal: controller.signal,
        onProgress: (progress) => {
          seen.push(progress.tensorsDone);
          if (progress.tensorsDone === 2) controller.abort();
        },
      }),
      MergeCancelledError,
    );
    assert.equal(existsSync(out), false);
    assert.deepEqual(seen, [0, 1, 2]);
  } finally {
    await closePlan(p);
  }
});

test('a failure mid-merge removes the partial output; a non-empty output folder is refused', async () => {
  // density 0.1 keeps int(0.8) = 0 entries of the 8-element layernorm: the planner refuses it (below), so
  // the value is forced into the plan afterwards to make the executor fail part-way.
  await assert.rejects(
    plan({
      merge_method: 'ties',
      base_model: 'base.safetensors',
      models: two.map((m) => ({ ...m, parameters: { weight: 1, density: 0.1 } })),
    }),
    (e: unknown) =>
      e instanceof MergePlanError &&
      e.code === 'invalid_parameter' &&
      e.parameter === 'density' &&
      e.model === two[0].model &&
      e.tensor === 'model.layers.0.input_layernorm.weight',
  );
  const p = await plan({
    merge_method: 'ties',
    base_model: 'base.safetensors',
    models: two.map((m) => ({ ...m, parameters: { weight: 1, density: 0.5 } })),
  });
  const layernorm = p.tensors.find((t) => t.name === 'model.layers.0.input_layernorm.weight')!;
  for (const params of layernorm.perModel ?? []) if ('density' in params) params.density = 0.1;
  const out = path.join(dir.dir, 'out-fail');
  try {
    await assert.rejects(
      executeMerge(p, { outDir: out }),
      (e: unknown) =>
        e instanceof MergePlanError &&
        e.code === 'merge_failed' &&
        e.tensor === 'model.layers.0.input_layernorm.weight',
    );
    assert.equal(existsSync(out), false);
    mkdirSync(out);
    writeFileSync(path.join(out, 'keep.txt'), 'mine');
    await assert.rejects(
      executeMerge(p, { outDir: out }),
      (e: unknown) => e instanceof MergePlanError && e.code === 'output_not_empty',
    );
    assert.deepEqual(readdirSync(out), ['keep.txt']);
  } finally {
    await closePlan(p);
  }
});

test('lorafuse merge: dry run, usage errors and user errors as exit codes', async () => {
  const recipe = path.join(dir.dir, 'recipe.yaml');
  writeFileSync(
    recipe,
    'merge_method: linear\nmodels:\n  - model: m0.safetensors\n    parameters: {weight: 1}\n',
  );
  assert.equal(await runMergeCommand([recipe, '--dry-run']), 0);
  assert.equal(await runMergeCommand([recipe]), 2);
  assert.equal(
    await runMergeCommand([recipe, '--out', path.join(dir.dir, 'x'), '--max-shard-size', 'lots']),
    2,
  );
  const bad = path.join(dir.dir, 'bad.yaml');
  writeFileSync(bad, 'merge_method: linear\nmodels: []\n');
  assert.equal(await runMergeCommand([bad, '--out', path.join(dir.dir, 'y')]), 1);
  // A recipe file that is not there is an argument error, found before anything starts.
  assert.equal(await runMergeCommand([path.join(dir.dir, 'none.yaml'), '--out', path.join(dir.dir, 'z')]), 2);
  const out = path.join(dir.dir, 'cli-out');
  assert.equal(await runMergeCommand([recipe, '--out', out, '--max-shard-size', '1KB']), 0);
  assert.ok(existsSync(path.join(out, 'model.safetensors.index.json')));
  assert.equal(parseSize('5GB'), 5e9);
  assert.equal(parseSize('2GiB'), 2 * 1024 ** 3);
  assert.equal(parseSize('1000'), 1000);
});

test('shards merged apart (one subset plan each) are the files of one run, and the index is the same', async () => {
  const recipe = parseRecipe({
    merge_method: 'dare_ties',
    base_model: 'base.safetensors',
    models: [
      { model: 'm0.safetensors', parameters: { weight: 0.6, density: 0.5 } },
      { model: 'm1.safetensors', parameters: { weight: 0.4, density: 0.5 } },
    ],
    seed: 7,
    max_shard_size: 600,
  });
  const plan = await planMerge(recipe, fileResolver(dir.dir));
  try {
    const maxShardBytes = recipe.max_shard_size as number;
    const split = shardPlanFor(plan, maxShardBytes);
    assert.ok(split && split.shards.length >= 3, 'several shards');
    const whole = path.join(dir.dir, 'shards-whole');
    const result = await executeMerge(plan, { outDir: whole, maxShardBytes });
    assert.deepEqual(
      result.files,
      [...split.shards.map((s) => s.file), 'model.safetensors.index.json'].sort(),
    );
    assert.equal(readFileSync(path.join(whole, 'model.safetensors.index.json'), 'utf8'), split.index);
    for (const [i, shard] of split.shards.entries()) {
      const apart = path.join(dir.dir, `shards-apart-${i}`);
      await executeMerge(subsetPlan(plan, shard.tensors), {
        outDir: apart,
        maxShardBytes: Number.MAX_SAFE_INTEGER,
      });
      assert.ok(
        readFileSync(path.join(apart, 'model.safetensors')).equals(
          readFileSync(path.join(whole, shard.file)),
        ),
        `${shard.file} merged apart differs`,
      );
    }
    assert.throws(
      () => subsetPlan(plan, ['model.nothing.weight']),
      (e: unknown) =>
        e instanceof MergePlanError && e.code === 'shard_mismatch' && e.tensor === 'model.nothing.weight',
    );
    // One shard: the merge runs whole.
    assert.equal(shardPlanFor(plan, Number.MAX_SAFE_INTEGER), null);
  } finally {
    await closePlan(plan);
  }
  // The CLI takes the recipe's max_shard_size when --max-shard-size is not given.
  const file = path.join(dir.dir, 'sharded.yaml');
  writeFileSync(
    file,
    'merge_method: linear\nmax_shard_size: 600\nmodels:\n  - model: m0.safetensors\n    parameters: {weight: 1}\n',
  );
  const out = path.join(dir.dir, 'cli-sharded');
  assert.equal(await runMergeCommand([file, '--out', out]), 0);
  assert.ok(existsSync(path.join(out, 'model.safetensors.index.json')));
});
