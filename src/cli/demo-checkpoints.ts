// The demo's inputs: a tiny Llama-shaped base model and three "fine-tuned" variants (base plus a
// seeded task-specific delta), written as Hugging Face model folders (config.json + model.safetensors).
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { seededUniform, writeSafetensors } from '../tensors/index.ts';

export const DEMO_VARIANTS = ['math', 'code', 'chat'] as const;

const HIDDEN = 64;
const INTERMEDIATE = 128;
const VOCAB = 96;
const LAYERS = 2;

export interface DemoTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

function shapes(): Array<[string, number[]]> {
  const list: Array<[string, number[]]> = [['model.embed_tokens.weight', [VOCAB, HIDDEN]]];
  for (let layer = 0; layer < LAYERS; layer++) {
    const p = `model.layers.${layer}`;
    list.push(
      [`${p}.input_layernorm.weight`, [HIDDEN]],
      [`${p}.self_attn.q_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.k_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.v_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.self_attn.o_proj.weight`, [HIDDEN, HIDDEN]],
      [`${p}.post_attention_layernorm.weight`, [HIDDEN]],
      [`${p}.mlp.up_proj.weight`, [INTERMEDIATE, HIDDEN]],
      [`${p}.mlp.down_proj.weight`, [HIDDEN, INTERMEDIATE]],
    );
  }
  list.push(['model.norm.weight', [HIDDEN]], ['lm_head.weight', [VOCAB, HIDDEN]]);
  return list;
}

export function demoBase(): DemoTensor[] {
  const next = seededUniform(2024);
  return shapes().map(([name, shape]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    const isNorm = shape.length === 1;
    for (let i = 0; i < data.length; i++) data[i] = isNorm ? 1 : (next() - 0.5) * 0.2;
    return { name, shape, data };
  });
}

/** A variant: base plus a sparse-ish delta of its own seed (what fine-tuning on one task leaves). */
export function demoVariant(base: DemoTensor[], index: number): DemoTensor[] {
  const next = seededUniform(7 + index * 101);
  return base.map(({ name, shape, data }) => {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const u = next();
      out[i] = data[i] + (u < 0.3 ? (next() - 0.5) * 0.05 : 0);
    }
    return { name, shape, data: out };
  });
}

export const DEMO_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: HIDDEN,
  intermediate_size: INTERMEDIATE,
  num_hidden_layers: LAYERS,
  num_attention_heads: 4,
  vocab_size: VOCAB,
  torch_dtype: 'float32',
};

/** Writes a model folder and returns its path. */
export async function writeDemoModel(dir: string, tensors: DemoTensor[]): Promise<string> {
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'config.json'), `${JSON.stringify(DEMO_CONFIG, null, 2)}\n`);
  await writeSafetensors(
    path.join(dir, 'model.safetensors'),
    tensors.map((t) => ({ name: t.name, dtype: 'F32' as const, shape: t.shape, data: t.data })),
  );
  return dir;
}
