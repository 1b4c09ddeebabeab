// STAND-IN (branch h9study): writes test/fixtures/backbones/mnist-vit, a randomly initialised tiny ViT with a
// 5-class "pretext" classifier, so `lorafuse study` runs before h9suite's pre-trained backbone lands (which
// replaces this script's output). Seeded: the same bytes every run. Usage: tsx scripts/stand-in-mnist-backbone.ts
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { MNIST_BACKBONE_DIR } from '../src/eval/datasets/mnist-backbone.ts';
import { type HostTensor, writeSafetensorsFile } from '../src/model/io/host-tensors.ts';
import { seededUniform } from '../src/model/random.ts';

const PRETEXT_CLASSES = 5;
const config = {
  architectures: ['ViTForImageClassification'],
  model_type: 'vit',
  hidden_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  intermediate_size: 64,
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
  num_labels: PRETEXT_CLASSES,
  id2label: Object.fromEntries(
    Array.from({ length: PRETEXT_CLASSES }, (_, i) => [String(i), `pretext-${i}`]),
  ),
  label2id: Object.fromEntries(Array.from({ length: PRETEXT_CLASSES }, (_, i) => [`pretext-${i}`, i])),
};

async function main(): Promise<void> {
  const uniform = seededUniform(20261204);
  const normal = () =>
    Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform()) * config.initializer_range;
  const tensors: Array<[string, HostTensor]> = [];
  const add = (name: string, shape: number[], fill: 'normal' | 'zeros' | 'ones') => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (fill !== 'zeros') for (let i = 0; i < data.length; i++) data[i] = fill === 'ones' ? 1 : normal();
    tensors.push([name, { dtype: 'F32', shape, data }]);
  };
  const linear = (name: string, out: number, inn: number) => {
    add(`${name}.weight`, [out, inn], 'normal');
    add(`${name}.bias`, [out], 'zeros');
  };
  const h = config.hidden_size;
  const patches = (config.image_size / config.patch_size) ** 2;
  add('vit.embeddings.cls_token', [1, 1, h], 'normal');
  add('vit.embeddings.position_embeddings', [1, patches + 1, h], 'normal');
  add(
    'vit.embeddings.patch_embeddings.projection.weight',
    [h, 1, config.patch_size, config.patch_size],
    'normal',
  );
  add('vit.embeddings.patch_embeddings.projection.bias', [h], 'zeros');
  for (let i = 0; i < config.num_hidden_layers; i++) {
    const p = `vit.encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value']) linear(`${p}.attention.attention.${m}`, h, h);
    linear(`${p}.attention.output.dense`, h, h);
    linear(`${p}.intermediate.dense`, config.intermediate_size, h);
    linear(`${p}.output.dense`, h, config.intermediate_size);
    for (const ln of ['layernorm_before', 'layernorm_after']) {
      add(`${p}.${ln}.weight`, [h], 'ones');
      add(`${p}.${ln}.bias`, [h], 'zeros');
    }
  }
  add('vit.layernorm.weight', [h], 'ones');
  add('vit.layernorm.bias', [h], 'zeros');
  linear('classifier', PRETEXT_CLASSES, h);
  await mkdir(MNIST_BACKBONE_DIR, { recursive: true });
  await writeSafetensorsFile(path.join(MNIST_BACKBONE_DIR, 'model.safetensors'), tensors, { format: 'pt' });
  await writeFile(path.join(MNIST_BACKBONE_DIR, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  process.stdout.write(`wrote ${MNIST_BACKBONE_DIR}\n`);
}

await main();
