// Adapter merges end to end: parameter space (A and B merged as checkpoints around the expansion
// point), delta space into an adapter or a full model, and a peft_* method on the golden adapters.
import assert from 'node:assert/strict';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileResolver } from '../../src/cli/merge-command.ts';
import { closePlan, executeMerge, MergePlanError, parseRecipe, planMerge } from '../../src/merge/index.ts';
import { Checkpoint, writeSafetensors } from '../../src/tensors/index.ts';
import { compareTensors, goldenCaseDir, readGoldenTensors } from '../helpers/golden.ts';
import { tempDir } from '../helpers/redis.ts';

const CAT = goldenCaseDir('peft_cat');
const TOL = { rtol: 1e-5, atol: 1e-6 };
const MODULES = [0, 1].flatMap((l) => ['q_proj', 'v_proj'].map((p) => `model.layers.${l}.self_attn.${p}`));
const key = (module: string, f: 'A' | 'B') => `base_model.model.${module}.lora_${f}.weight`;

let dir: ReturnType<typeof tempDir>;
type Tensors = Awaited<ReturnType<typeof readGoldenTensors>>;
const adapters: Record<string, Tensors> = {};

before(async () => {
  dir = tempDir('lorafuse-lora');
  for (const name of ['a0', 'a1', 'a2_r8']) {
    cpSync(path.join(CAT, 'adapters', name), path.join(dir.dir, name), { recursive: true });
    adapters[name] = await readGoldenTensors(path.join(CAT, 'adapters', name, 'adapter_model.safetensors'));
  }
  // a0 and a1 again, recording an expansion point: A₀ = a0's A, B₀ = 0.
  const init = MODULES.flatMap((m) => [
    {
      name: key(m, 'A'),
      dtype: 'F32' as const,
      shape: adapters.a0.get(key(m, 'A'))!.shape,
      data: adapters.a0.get(key(m, 'A'))!.data,
    },
    {
      name: key(m, 'B'),
      dtype: 'F32' as const,
      shape: adapters.a0.get(key(m, 'B'))!.shape,
      data: new Float32Array(adapters.a0.get(key(m, 'B'))!.data.length),
    },
  ]);
  for (const name of ['a0', 'a1']) {
    cpSync(path.join(dir.dir, name), path.join(dir.dir, `${name}_init`), { recursive: true });
    await writeSafetensors(path.join(dir.dir, `${name}_init`, 'lorafuse_init.safetensors'), init);
  }
  // A base model for the modules (q_proj [32,32], v_proj [16,32]) plus an untouched tensor.
  const base = [
    ...MODULES.map((m) => {
      const shape = m.endsWith('q_proj') ? [32, 32] : [16, 32];
      return {
        name: `${m}.weight`,
        dtype: 'F32' as const,
        shape,
        data: Float32Array.from({ length: shape[0] * 32 }, (_, i) => Math.cos(i) * 0.05),
      };
    }),
    { name: 'lm_head.weight', dtype: 'F32' as const, shape: [4, 32], data: new Float32Array(128).fill(0.5) },
  ];
  await writeSafetensors(path.join(dir.dir, 'base.safetensors'), base);
});
after(() => dir.remove());

async function merge(recipe: Record<string, unknown>, outName: string) {
  const plan = await planMerge(parseRecipe(recipe), fileResolver(dir.dir));
  try {
    const outDir = path.join(dir.dir, outName);
    const result = await executeMerge(plan, { outDir });
    return { outDir, result };
  } finally {
    await closePlan(plan);
  }
}

const weighted = (names: string[], weights: number[]) =>
  names.map((adapter, i) => ({ adapter, parameters: { weight: weights[i] } }));

test('parameter space, no expansion point: A and B are each the weighted sum (base zero)', async () => {
  const { outDir, result } = await merge(
    { merge_method: 'task_arithmetic', models: weighted(['a0', 'a1'], [1.0, 0.6]) },
    'out-params',
  );
  assert.equal(result.kind, 'adapter');
  assert.deepEqual(result.files, ['adapter_config.json', 'adapter_model.safetensors', 'lorafuse.json']);
  assert.deepEqual(
    JSON.parse(readFileSync(path.join(outDir, 'adapter_config.json'), 'utf8')),
    JSON.parse(readFileSync(path.join(CAT, 'adapters', 'a0', 'adapter_config.json'), 'utf8')),
  );
  assert.equal(
    JSON.parse(readFileSync(path.join(outDir, 'lorafuse.json'), 'utf8')).merge.space,
    'parameters',
  );
  const merged = await readGoldenTensors(path.join(outDir, 'adapter_model.safetensors'));
  for (const [name, tensor] of merged) {
    const expected = adapters.a0.get(name)!.data.map((v, i) => v + 0.6 * adapters.a1.get(name)!.data[i]);
    assert.equal(compareTensors(tensor.data, expected, TOL), null, name);
  }
});

test('parameter space around a recorded expansion point: A₀ is the base of lora_A; the init travels along', async () => {
  const { outDir, result } = await merge(
    { merge_method: 'task_arithmetic', models: weighted(['a0_init', 'a1_init'], [1.0, 0.5]) },
    'out-init',
  );
  assert.ok(result.files.includes('lorafuse_init.safetensors'));
  const merged = await readGoldenTensors(path.join(outDir, 'adapter_model.safetensors'));
  for (const module of MODULES) {
    const a0 = adapters.a0.get(key(module, 'A'))!.data;
    const a1 = adapters.a1.get(key(module, 'A'))!.data;
    // A = A₀ + 1.0·(a0 − A₀) + 0.5·(a1 − A₀) with A₀ = a0's A.
    const expected = a0.map((v, i) => v + 0.5 * (a1[i] - v));
    assert.equal(compareTensors(merged.get(key(module, 'A'))!.data, expected, TOL), null, module);
  }
});

test('parameter space needs the same rank per module; the error names the module', async () => {
  await assert.rejects(
    merge({ merge_method: 'linear', models: weighted(['a0', 'a2_r8'], [1, 1]) }, 'out-ranks'),
    (e: unknown) =>
      e instanceof MergePlanError &&
      e.code === 'rank_mismatch' &&
      e.tensor === 'model.layers.0.self_attn.q_proj',
  );
});

test('delta space into a model: base weight + Σ wᵢ·sᵢ·Bᵢ·Aᵢ, other tensors copied', async () => {
  const { outDir, result } = await merge(
    {
      merge_method: 'task_arithmetic',
      base_model: 'base.safetensors',
      models: weighted(['a0', 'a2_r8'], [1.0, 0.4]),
      lora: { space: 'delta', output: 'model' },
    },
    'out-model',
  );
  assert.equal(result.kind, 'model');
  const merged = await readGoldenTensors(path.join(outDir, 'model.safetensors'));
  const base = await readGoldenTensors(path.join(dir.dir, 'base.safetensors'));
  assert.deepEqual(merged.get('lm_head.weight')!.data, base.get('lm_head.weight')!.data);
  for (const module of MODULES) {
    const w = base.get(`${module}.weight`)!;
    const [out, inF] = w.shape;
    const expected = new Float64Array(w.data);
    for (const [name, weight, scaling] of [
      ['a0', 1.0, 2],
      ['a2_r8', 0.4, 1],
    ] as const) {
      const a = adapters[name].get(key(module, 'A'))!;
      const b = adapters[name].get(key(module, 'B'))!.data;
      const r = a.shape[0];
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inF; i++) {
          let sum = 0;
          for (let k = 0; k < r; k++) sum += b[o * r + k] * a.data[k * inF + i];
          expected[o * inF + i] += weight * scaling * sum;
        }
    }
    assert.equal(
      compareTensors(merged.get(`${module}.weight`)!.data, Float32Array.from(expected), TOL),
      null,
      module,
    );
  }
});

test('peft_cat through the executor reproduces the golden adapter and its dense delta', async () => {
  const { outDir, result } = await merge(
    { merge_method: 'peft_cat', models: weighted(['a0', 'a1', 'a2_r8'], [1.0, 0.6, 0.4]) },
    'out-cat',
  );
  assert.equal(result.kind, 'adapter');
  const config = JSON.parse(readFileSync(path.join(outDir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([config.r, config.lora_alpha], [16, 16]);
  const merged = await Checkpoint.openFolder(outDir, 'adapter_model');
  const expectedDelta = await readGoldenTensors(path.join(CAT, 'expected', 'delta.safetensors'));
  try {
    for (const module of MODULES) {
      const a = await merged.readFloat32(key(module, 'A'));
      const b = await merged.readFloat32(key(module, 'B'));
      const [out, r] = merged.info(key(module, 'B')).shape;
      const inF = merged.info(key(module, 'A')).shape[1];
      const delta = new Float32Array(out * inF);
      for (let o = 0; o < out; o++)
        for (let i = 0; i < inF; i++) {
          let sum = 0;
          for (let k = 0; k < r; k++) sum += b[o * r + k] * a[k * inF + i];
          delta[o * inF + i] = sum;
        }
      assert.equal(compareTensors(delta, expectedDelta.get(`${module}.weight`)!.data, TOL), null, module);
    }
  } finally {
    await merged.close();
  }
});

test('delta space into an adapter re-factors to the requested rank and reports the error', async () => {
  const { outDir, result } = await merge(
    {
      merge_method: 'ties',
      base_model: 'base.safetensors',
      models: weighted(['a0', 'a1'], [1.0, 0.6]).map((m) => ({
        ...m,
        parameters: { ...m.parameters, density: 0.5 },
      })),
      lora: { space: 'delta', rank: 4 },
    },
    'out-refactor',
  );
  const config = JSON.parse(readFileSync(path.join(outDir, 'adapter_config.json'), 'utf8'));
  assert.deepEqual([config.r, config.lora_alpha], [4, 4]);
  const errors = result.diagnostics?.relativeError as Record<string, number>;
  assert.deepEqual(Object.keys(errors).sort(), [...MODULES].sort());
  for (const value of Object.values(errors)) assert.ok(value >= 0 && value < 1);
});

test('modules_to_save in delta space: a tensor method merges them around the base tensor; peft_* keep the first', async () => {
  // a0 and a1 with a saved head: lm_head.weight stored whole, as PEFT stores modules_to_save.
  const heads = { a0: 0.9, a1: -0.2 };
  for (const [name, value] of Object.entries(heads)) {
    const folder = path.join(dir.dir, `${name}_head`);
    cpSync(path.join(dir.dir, name), folder, { recursive: true });
    const config = JSON.parse(readFileSync(path.join(folder, 'adapter_config.json'), 'utf8'));
    config.modules_to_save = ['lm_head'];
    writeFileSync(path.join(folder, 'adapter_config.json'), JSON.stringify(config));
    const tensors = [...adapters[name as 'a0' | 'a1']].map(([tensorName, t]) => ({
      name: tensorName,
      dtype: 'F32' as const,
      shape: t.shape,
      data: t.data,
    }));
    tensors.push({
      name: 'base_model.model.lm_head.weight',
      dtype: 'F32',
      shape: [4, 32],
      data: new Float32Array(128).fill(value),
    });
    await writeSafetensors(path.join(folder, 'adapter_model.safetensors'), tensors);
  }
  // base lm_head = 0.5: task arithmetic gives 0.5 + 1.0·(0.9 − 0.5) + 0.6·(−0.2 − 0.5) = 0.48.
  const expected = Math.fround(0.5 + Math.fround(Math.fround(0.4) + Math.fround(0.6 * Math.fround(-0.7))));
  const models = weighted(['a0_head', 'a1_head'], [1.0, 0.6]);
  for (const output of ['adapter', 'model'] as const) {
    const { outDir } = await merge(
      {
        merge_method: 'task_arithmetic',
        base_model: 'base.safetensors',
        models,
        lora: { space: 'delta', rank: 'full', output },
      },
      `saved-head-${output}`,
    );
    const file = output === 'adapter' ? 'adapter_model.safetensors' : 'model.safetensors';
    const head = (await readGoldenTensors(path.join(outDir, file))).get(
      output === 'adapter' ? 'base_model.model.lm_head.weight' : 'lm_head.weight',
    )!;
    for (const v of head.data) assert.ok(Math.abs(v - expected) < 1e-6, `${output}: ${v} vs ${expected}`);
  }
  const { outDir } = await merge({ merge_method: 'peft_cat', models }, 'saved-head-peft-cat');
  const head = (await readGoldenTensors(path.join(outDir, 'adapter_model.safetensors'))).get(
    'base_model.model.lm_head.weight',
  )!;
  assert.ok(head.data.every((v) => v === Math.fround(0.9)));
});
