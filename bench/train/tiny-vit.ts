import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { HostTensor } from '../../src/model/io/host-tensors.ts';
import { writeSafetensorsFile } from '../../src/model/io/host-tensors.ts';
import { seededUniform } from '../../src/model/random.ts';

/** The benchmark's model: ViTForImageClassification, 4 layers, hidden 64, 28×28×1 images, patch 7, 10 labels. */
export const BENCH_VIT_CONFIG = {
  architectures: ['ViTForImageClassification'],
  model_type: 'vit',
  hidden_size: 64,
  num_hidden_layers: 4,
  num_attention_heads: 4,
  intermediate_size: 256,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.0,
  attention_probs_dropout_prob: 0.0,
  initializer_range: 0.02,
  layer_norm_eps: 1e-12,
  image_size: 28,
  patch_size: 7,
  num_channels: 1,
  qkv_bias: true,
  encoder_stride: 7,
  num_labels: 10,
  id2label: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), String(i)])),
  label2id: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [String(i), i])),
};

/**
 * Writes a randomly initialised model folder (normal(0, 0.02) weights, unit layer-norm gains); `overrides` changes
 * config fields (the MNIST backbone's pretext head has 4 labels).
 */
export async function writeBenchVit(
  dir: string,
  seed = 0,
  overrides: Partial<Record<keyof typeof BENCH_VIT_CONFIG, unknown>> = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const c = { ...BENCH_VIT_CONFIG, ...overrides } as typeof BENCH_VIT_CONFIG;
  const uniform = seededUniform(seed);
  const normal = () =>
    Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) * c.initializer_range;
  const tensors: Array<[string, HostTensor]> = [];
  const add = (name: string, shape: number[], fill: 'normal' | 'zeros' | 'ones') => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (fill !== 'zeros') for (let i = 0; i < n; i++) data[i] = fill === 'ones' ? 1 : normal();
    tensors.push([name, { dtype: 'F32', shape, data }]);
  };
  const h = c.hidden_size;
  const patches = (c.image_size / c.patch_size) ** 2;
  add('vit.embeddings.cls_token', [1, 1, h], 'normal');
  add('vit.embeddings.position_embeddings', [1, patches + 1, h], 'normal');
  add(
    'vit.embeddings.patch_embeddings.projection.weight',
    [h, c.num_channels, c.patch_size, c.patch_size],
    'normal',
  );
  add('vit.embeddings.patch_embeddings.projection.bias', [h], 'zeros');
  const linear = (name: string, out: number, inn: number) => {
    add(`${name}.weight`, [out, inn], 'normal');
    add(`${name}.bias`, [out], 'zeros');
  };
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `vit.encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value']) linear(`${p}.attention.attention.${m}`, h, h);
    linear(`${p}.attention.output.dense`, h, h);
    linear(`${p}.intermediate.dense`, c.intermediate_size, h);
    linear(`${p}.output.dense`, h, c.intermediate_size);
    for (const ln of ['layernorm_before', 'layernorm_after']) {
      add(`${p}.${ln}.weight`, [h], 'ones');
      add(`${p}.${ln}.bias`, [h], 'zeros');
    }
  }
  add('vit.layernorm.weight', [h], 'ones');
  add('vit.layernorm.bias', [h], 'zeros');
  linear('classifier', c.num_labels, h);
  await writeSafetensorsFile(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(c, null, 2)}\n`);
}
