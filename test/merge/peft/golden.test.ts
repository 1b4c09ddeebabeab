import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { ParameterValue } from '../../../src/merge/method.ts';
import { addWeightedAdapterModule } from '../../../src/merge/peft/add-weighted-adapter.ts';
import { peftCat } from '../../../src/merge/methods/peft-cat.ts';
import { peftSvd } from '../../../src/merge/methods/peft-svd.ts';
import { fileResolver } from '../../../src/cli/merge-command.ts';
import { closePlan, executeMerge, parseRecipe, planMerge } from '../../../src/merge/index.ts';
import { tempDir } from '../../helpers/redis.ts';
import { goldenCaseDir, readCaseJson, readGoldenTensors } from '../../helpers/golden.ts';
import { assertClose, loadGoldenAdapters, MODULES, product } from './adapters.ts';

const WEIGHTS = [1.0, 0.6, 0.4];
const NAMES = ['a0', 'a1', 'a2_r8'];

test('golden peft_cat: adapter tensors and dense delta within rtol 1e-5, atol 1e-6', async () => {
  const call = readCaseJson('peft_cat').add_weighted_adapter_call;
  assert.deepEqual(call.weights, WEIGHTS);
  const modules = await loadGoldenAdapters('peft_cat', NAMES, WEIGHTS);
  const expected = await readGoldenTensors(
    path.join(goldenCaseDir('peft_cat'), 'expected', 'adapter_model.safetensors'),
  );
  const deltas = await readGoldenTensors(
    path.join(goldenCaseDir('peft_cat'), 'expected', 'delta.safetensors'),
  );
  for (const module of MODULES) {
    const adapters = modules.get(module)!;
    const merged = peftCat.mergeModule({ moduleName: module, adapters, params: {} });
    assert.equal(merged.rank, 16);
    assertClose(
      merged.a,
      expected.get(`base_model.model.${module}.lora_A.weight`)!.data,
      1e-5,
      1e-6,
      `${module} A`,
    );
    assertClose(
      merged.b,
      expected.get(`base_model.model.${module}.lora_B.weight`)!.data,
      1e-5,
      1e-6,
      `${module} B`,
    );
    const delta = product(merged.b, merged.a, adapters[0].outFeatures, 16, adapters[0].inFeatures);
    assertClose(delta, deltas.get(`${module}.weight`)!.data, 1e-5, 1e-6, `${module} delta`);
  }
});

async function svdCase(doubleScaling: boolean, folder: 'expected' | 'alt_single_scaling') {
  const modules = await loadGoldenAdapters('peft_svd', NAMES, WEIGHTS);
  const dir = path.join(goldenCaseDir('peft_svd'), folder);
  const deltas = await readGoldenTensors(path.join(dir, 'delta.safetensors'));
  const pre = await readGoldenTensors(path.join(dir, 'pre_svd_delta.safetensors'));
  for (const module of MODULES) {
    const adapters = modules.get(module)!;
    const params: Record<string, ParameterValue> = doubleScaling ? { peft_compat_double_scaling: true } : {};
    const merged = peftSvd.mergeModule({ moduleName: module, adapters, params });
    assert.equal(merged.rank, 8);
    const { outFeatures: out, inFeatures: inF } = adapters[0];
    assert.equal(merged.a.length, 8 * inF);
    assert.equal(merged.b.length, out * 8);
    assertClose(
      product(merged.b, merged.a, out, 8, inF),
      deltas.get(`${module}.weight`)!.data,
      1e-4,
      1e-5,
      `${module} delta`,
    );
    const detail = addWeightedAdapterModule(
      'svd',
      { moduleName: module, adapters, params },
      { withPreSvdDelta: true },
    );
    assertClose(
      detail.preSvdDelta!,
      pre.get(`${module}.weight`)!.data,
      1e-5,
      1e-6,
      `${module} pre_svd_delta`,
    );
  }
}

test('golden peft_svd with peft_compat_double_scaling: true reproduces expected/ (PEFT 5d602fd)', async () => {
  await svdCase(true, 'expected');
});

test('golden peft_svd by default applies the scaling once: alt_single_scaling/', async () => {
  await svdCase(false, 'alt_single_scaling');
});

test('peft_svd declares PEFT parameter names and the double-scaling note', () => {
  assert.deepEqual(
    peftSvd.parameters.map((p) => p.name),
    ['weight', 'svd_rank', 'svd_clamp', 'svd_full_matrices', 'peft_compat_double_scaling'],
  );
  assert.match(peftSvd.notes ?? '', /twice/);
});

test('peft_svd end to end through the planner and executor: r = lora_alpha = 8, golden dense delta', async () => {
  const dir = path.join(goldenCaseDir('peft_svd'), 'adapters');
  const out = tempDir('lorafuse-peft-svd');
  try {
    for (const [params, folder] of [
      [{ peft_compat_double_scaling: true }, 'expected'],
      [{}, 'alt_single_scaling'],
    ] as const) {
      const recipe = parseRecipe({
        merge_method: 'peft_svd',
        models: NAMES.map((adapter, i) => ({ adapter, parameters: { weight: WEIGHTS[i] } })),
        parameters: params,
      });
      const plan = await planMerge(recipe, fileResolver(dir));
      const outDir = path.join(out.dir, folder);
      try {
        await executeMerge(plan, { outDir });
      } finally {
        await closePlan(plan);
      }
      const config = JSON.parse(readFileSync(path.join(outDir, 'adapter_config.json'), 'utf8'));
      assert.deepEqual([config.r, config.lora_alpha], [8, 8]);
      const merged = await readGoldenTensors(path.join(outDir, 'adapter_model.safetensors'));
      const deltas = await readGoldenTensors(
        path.join(goldenCaseDir('peft_svd'), folder, 'delta.safetensors'),
      );
      for (const module of MODULES) {
        const a = merged.get(`base_model.model.${module}.lora_A.weight`)!;
        const b = merged.get(`base_model.model.${module}.lora_B.weight`)!;
        const delta = product(b.data, a.data, b.shape[0], 8, a.shape[1]);
        assertClose(delta, deltas.get(`${module}.weight`)!.data, 1e-4, 1e-5, `${folder} ${module}`);
      }
    }
  } finally {
    out.remove();
  }
});
