import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { AdapterError } from '../../src/merge/errors.ts';
import {
  baseModuleName,
  checkAdapterAgainstBase,
  describeAdapter,
  moduleScaling,
  parseAdapterConfig,
} from '../../src/merge/lora/adapter.ts';
import { Checkpoint } from '../../src/tensors/index.ts';
import { goldenCaseDir } from '../helpers/golden.ts';

const adapters = path.join(goldenCaseDir('peft_cat'), 'adapters');
const readConfig = (name: string) => readFileSync(path.join(adapters, name, 'adapter_config.json'), 'utf8');

/** A stand-in for a checkpoint's header: names and shapes only (describeAdapter reads nothing else). */
function fakeWeights(shapes: Record<string, number[]>) {
  return {
    names: () => Object.keys(shapes),
    has: (name: string) => name in shapes,
    info: (name: string) => ({
      name,
      dtype: 'F32' as const,
      shape: shapes[name],
      numel: 0,
      byteLength: 0,
      dataOffsets: [0, 0] as [number, number],
    }),
  };
}

test('parses a PEFT config and lists the modules of the golden adapters', async () => {
  const config = parseAdapterConfig(readConfig('a0'));
  assert.equal(config.r, 4);
  assert.equal(config.loraAlpha, 8);
  assert.deepEqual(config.targetModules, ['q_proj', 'v_proj']);
  const weights = await Checkpoint.openFolder(path.join(adapters, 'a0'), 'adapter_model');
  try {
    const layout = describeAdapter(config, weights);
    assert.equal(layout.modules.length, 4);
    assert.deepEqual(layout.savedModules, []);
    const q = layout.modules.find((m) => m.module === 'model.layers.0.self_attn.q_proj')!;
    assert.equal(q.aKey, 'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight');
    assert.deepEqual([q.rank, q.inFeatures, q.outFeatures, q.scaling], [4, 32, 32, 2]);
    const v = layout.modules.find((m) => m.module === 'model.layers.1.self_attn.v_proj')!;
    assert.deepEqual([v.inFeatures, v.outFeatures], [32, 16]);
  } finally {
    await weights.close();
  }
  const r8 = parseAdapterConfig(readConfig('a2_r8'));
  assert.equal(moduleScaling(r8, 'model.layers.0.self_attn.q_proj').scaling, 1);
});

test('rank_pattern, alpha_pattern and rslora set per-module rank and scaling', () => {
  const config = parseAdapterConfig({
    r: 8,
    lora_alpha: 16,
    rank_pattern: { q_proj: 4 },
    alpha_pattern: { 'layers.1.self_attn.v_proj': 2 },
    use_rslora: true,
  });
  assert.deepEqual(moduleScaling(config, 'model.layers.0.self_attn.q_proj'), { rank: 4, scaling: 16 / 2 });
  assert.deepEqual(moduleScaling(config, 'model.layers.1.self_attn.v_proj'), {
    rank: 8,
    scaling: 2 / Math.sqrt(8),
  });
  assert.deepEqual(moduleScaling(config, 'model.layers.0.self_attn.v_proj'), {
    rank: 8,
    scaling: 16 / Math.sqrt(8),
  });
});

test('rejects malformed configs and unsupported adapters with a code and the module', () => {
  assert.throws(
    () => parseAdapterConfig('{'),
    (e: unknown) => e instanceof AdapterError && e.code === 'invalid_config',
  );
  assert.throws(() => parseAdapterConfig({ r: 0 }), /r must be a positive integer/);
  assert.throws(() => parseAdapterConfig({ r: 4, peft_type: 'IA3' }), /IA3/);
  const q = 'base_model.model.model.layers.0.self_attn.q_proj';
  const dora = parseAdapterConfig({ r: 4, use_dora: true });
  assert.throws(() => describeAdapter(dora, fakeWeights({})), /DoRA/);
  const plain = parseAdapterConfig({ r: 4, lora_alpha: 8 });
  assert.throws(
    () => describeAdapter(plain, fakeWeights({ [`${q}.lora_A.weight`]: [4, 32] })),
    (e: unknown) =>
      e instanceof AdapterError &&
      e.module === 'model.layers.0.self_attn.q_proj' &&
      /no lora_B/.test(e.message),
  );
  assert.throws(
    () =>
      describeAdapter(
        plain,
        fakeWeights({
          [`${q}.lora_A.weight`]: [4, 32],
          [`${q}.lora_B.weight`]: [32, 4],
          [`${q}.lora_B.bias`]: [32],
        }),
      ),
    /lora_bias/,
  );
  assert.throws(
    () =>
      describeAdapter(
        plain,
        fakeWeights({ [`${q}.lora_A.weight`]: [8, 32], [`${q}.lora_B.weight`]: [32, 8] }),
      ),
    (e: unknown) => e instanceof AdapterError && e.code === 'rank_mismatch',
  );
});

test('saved modules and embeddings are recognised; the base must have every module with its shape', () => {
  const config = parseAdapterConfig({ r: 2, lora_alpha: 2, modules_to_save: ['classifier'] });
  const layout = describeAdapter(
    config,
    fakeWeights({
      'base_model.model.embed.lora_embedding_A': [2, 100],
      'base_model.model.embed.lora_embedding_B': [16, 2],
      'base_model.model.fc.lora_A.weight': [2, 16],
      'base_model.model.fc.lora_B.weight': [8, 2],
      'base_model.model.classifier.weight': [3, 8],
    }),
  );
  assert.deepEqual(layout.savedModules, ['classifier.weight']);
  const embed = layout.modules.find((m) => m.module === 'embed')!;
  assert.equal(embed.embedding, true);
  checkAdapterAgainstBase(layout, fakeWeights({ 'embed.weight': [100, 16], 'fc.weight': [8, 16] }));
  assert.throws(
    () => checkAdapterAgainstBase(layout, fakeWeights({ 'embed.weight': [100, 16] })),
    (e: unknown) => e instanceof AdapterError && e.module === 'fc' && /no fc.weight/.test(e.message),
  );
  assert.throws(
    () => checkAdapterAgainstBase(layout, fakeWeights({ 'embed.weight': [100, 16], 'fc.weight': [16, 8] })),
    /expects fc.weight of shape \[8,16\] but the base has \[16,8\]/,
  );
});

test('the base check finds a module under either transformers naming, and still refuses a missing one', () => {
  const layout = (module: string) => ({
    modules: [
      {
        module,
        aKey: `base_model.model.${module}.lora_A.weight`,
        bKey: `base_model.model.${module}.lora_B.weight`,
        rank: 2,
        inFeatures: 8,
        outFeatures: 8,
        scaling: 1,
        embedding: false,
        fanInFanOut: false,
      },
    ],
    savedModules: [],
  });
  // ViT checkpoints on disk keep the transformers-4 names; transformers-5 PEFT writes the new ones.
  const base = fakeWeights({ 'vit.encoder.layer.0.attention.attention.query.weight': [8, 8] });
  checkAdapterAgainstBase(layout('vit.layers.0.attention.q_proj'), base);
  checkAdapterAgainstBase(layout('vit.encoder.layer.0.attention.attention.query'), base);
  assert.equal(
    baseModuleName('vit.layers.0.attention.q_proj', base),
    'vit.encoder.layer.0.attention.attention.query',
  );
  assert.throws(
    () => checkAdapterAgainstBase(layout('vit.layers.0.attention.k_proj'), base),
    (error: AdapterError) =>
      error.code === 'base_mismatch' &&
      /vit\.layers\.0\.attention\.k_proj\.weight \(nor vit\.encoder\.layer\.0\.attention\.attention\.key\.weight\)/.test(
        error.message,
      ),
  );
  // A base written in transformers-5 names accepts a transformers-4 adapter too.
  const base5 = fakeWeights({ 'vit.layers.0.attention.q_proj.weight': [8, 8] });
  checkAdapterAgainstBase(layout('vit.encoder.layer.0.attention.attention.query'), base5);
});
