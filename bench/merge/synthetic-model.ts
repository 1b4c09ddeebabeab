// A Llama-shaped synthetic checkpoint family for the merge benchmark: one base and fine-tuned variants
// (base + a dense, heavy-tailed delta), all BF16, written with lorafuse's own CheckpointWriter.

import { existsSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointWriter, float32ToBF16, type TensorSpec } from '../../src/tensors/index.ts';

export interface ModelShape {
  hidden: number;
  intermediate: number;
  vocab: number;
  layers: number;
}

/** Picks a Llama-like shape whose parameter count is close to `params`. */
export function shapeFor(params: number): ModelShape {
  const hidden = params >= 2e8 ? 1024 : params >= 2e7 ? 512 : 256;
  const intermediate = Math.round((hidden * 2.75) / 64) * 64;
  const vocab = hidden * 32;
  const perLayer = 4 * hidden * hidden + 3 * hidden * intermediate + 2 * hidden;
  const layers = Math.max(1, Math.round((params - 2 * vocab * hidden - hidden) / perLayer));
  return { hidden, intermediate, vocab, layers };
}

export function tensorSpecs(shape: ModelShape): TensorSpec[] {
  const { hidden: h, intermediate: i, vocab: v } = shape;
  const specs: TensorSpec[] = [{ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [v, h] }];
  for (let l = 0; l < shape.layers; l++) {
    const p = `model.layers.${l}`;
    specs.push(
      { name: `${p}.input_layernorm.weight`, dtype: 'BF16', shape: [h] },
      { name: `${p}.self_attn.q_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}.self_attn.k_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}.self_attn.v_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}.self_attn.o_proj.weight`, dtype: 'BF16', shape: [h, h] },
      { name: `${p}.post_attention_layernorm.weight`, dtype: 'BF16', shape: [h] },
      { name: `${p}.mlp.gate_proj.weight`, dtype: 'BF16', shape: [i, h] },
      { name: `${p}.mlp.up_proj.weight`, dtype: 'BF16', shape: [i, h] },
      { name: `${p}.mlp.down_proj.weight`, dtype: 'BF16', shape: [h, i] },
    );
  }
  specs.push(
    { name: 'model.norm.weight', dtype: 'BF16', shape: [h] },
    { name: 'lm_head.weight', dtype: 'BF16', shape: [v, h] },
  );
  return specs;
}

export function parameterCount(specs: readonly TensorSpec[]): number {
  return specs.reduce((sum, s) => sum + s.shape.reduce((a, b) => a * b, 1), 0);
}

/** xorshift32: fast, deterministic, good enough for synthetic weights. */
function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

const TO_UNIT = 1 / 4294967296;

/** Base: uniform ±0.04 (norms near 1). Variant: base + delta with a heavy tail (u·|u'|³). */
function fillTensor(out: Float32Array, spec: TensorSpec, tensorIndex: number, variant: number): void {
  const base = xorshift(0x9e3779b9 ^ (tensorIndex * 2654435761));
  const isNorm = spec.shape.length === 1;
  for (let j = 0; j < out.length; j++) {
    const u = base() * TO_UNIT - 0.5;
    out[j] = isNorm ? 1 + u * 0.1 : u * 0.08;
  }
  if (variant === 0) return;
  const delta = xorshift(variant * 0x85ebca6b + tensorIndex * 0xc2b2ae35 + 1);
  for (let j = 0; j < out.length; j++) {
    const u = delta() * TO_UNIT - 0.5;
    const tail = delta() * TO_UNIT;
    out[j] += u * tail * tail * tail * 0.02;
  }
}

/** Writes one model folder (config.json + model.safetensors); `variant` 0 is the base. */
export async function writeSyntheticModel(dir: string, shape: ModelShape, variant: number): Promise<void> {
  const specs = tensorSpecs(shape);
  const staging = `${dir}.partial`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  const writer = await CheckpointWriter.create(staging, specs, { metadata: { format: 'pt' } });
  try {
    for (const [index, spec] of specs.entries()) {
      const values = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
      fillTensor(values, spec, index, variant);
      await writer.write(spec.name, float32ToBF16(values));
    }
    await writer.close();
  } catch (error) {
    await writer.abort();
    throw error;
  }
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_size: shape.hidden,
    intermediate_size: shape.intermediate,
    num_hidden_layers: shape.layers,
    num_attention_heads: shape.hidden / 64,
    num_key_value_heads: shape.hidden / 64,
    vocab_size: shape.vocab,
    torch_dtype: 'bfloat16',
    lorafuse_bench: { variant },
  };
  await writeFile(path.join(staging, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  await rename(staging, dir);
}

export interface BenchModels {
  root: string;
  base: string;
  finetuned: string[];
  parameters: number;
}

/** Creates `.bench-data/p<params>/{base,ft1,ft2,ft3}` once; later runs reuse what is there. */
export async function ensureBenchModels(
  dataRoot: string,
  params: number,
  log: (line: string) => void,
): Promise<BenchModels> {
  const shape = shapeFor(params);
  const root = path.join(dataRoot, `p${params}`);
  const names = ['base', 'ft1', 'ft2', 'ft3'];
  for (const [variant, name] of names.entries()) {
    const dir = path.join(root, name);
    if (existsSync(path.join(dir, 'config.json'))) continue;
    const started = performance.now();
    await writeSyntheticModel(dir, shape, variant);
    log(`generated ${dir} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return {
    root,
    base: path.join(root, 'base'),
    finetuned: names.slice(1).map((n) => path.join(root, n)),
    parameters: parameterCount(tensorSpecs(shape)),
  };
}
