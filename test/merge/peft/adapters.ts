// Loads the golden PEFT adapters as per-module LoraModuleInput lists, and small random adapters.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gaussian, seededStream } from '../../../src/merge/linalg/seeded-random.ts';
import type { LoraModuleInput } from '../../../src/merge/method.ts';
import { goldenCaseDir, readGoldenTensors } from '../../helpers/golden.ts';

export const MODULES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.0.self_attn.v_proj',
  'model.layers.1.self_attn.q_proj',
  'model.layers.1.self_attn.v_proj',
];

/** modules → one LoraModuleInput per adapter (in the given order), weight from `weights`. */
export async function loadGoldenAdapters(
  caseName: string,
  names: string[],
  weights: number[],
): Promise<Map<string, LoraModuleInput[]>> {
  const out = new Map<string, LoraModuleInput[]>(MODULES.map((m) => [m, []]));
  for (const [j, name] of names.entries()) {
    const dir = path.join(goldenCaseDir(caseName), 'adapters', name);
    const config = JSON.parse(readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const tensors = await readGoldenTensors(path.join(dir, 'adapter_model.safetensors'));
    for (const module of MODULES) {
      const a = tensors.get(`base_model.model.${module}.lora_A.weight`)!;
      const b = tensors.get(`base_model.model.${module}.lora_B.weight`)!;
      out.get(module)!.push({
        a: a.data,
        b: b.data,
        rank: a.shape[0],
        inFeatures: a.shape[1],
        outFeatures: b.shape[0],
        scaling: config.lora_alpha / config.r,
        params: { weight: weights[j] },
      });
    }
  }
  return out;
}

export function randomAdapter(
  out: number,
  inFeatures: number,
  rank: number,
  seed: number,
  weight: number,
  scaling = 2,
): LoraModuleInput {
  const random = seededStream(seed);
  return {
    a: Float32Array.from({ length: rank * inFeatures }, () => 0.3 * gaussian(random)),
    b: Float32Array.from({ length: out * rank }, () => 0.3 * gaussian(random)),
    rank,
    inFeatures,
    outFeatures: out,
    scaling,
    params: { weight },
  };
}

/** B·A as float64, [out, in]. */
export function product(
  b: ArrayLike<number>,
  a: ArrayLike<number>,
  out: number,
  rank: number,
  inF: number,
): Float64Array {
  const d = new Float64Array(out * inF);
  for (let o = 0; o < out; o++) {
    for (let r = 0; r < rank; r++)
      for (let i = 0; i < inF; i++) d[o * inF + i] += b[o * rank + r] * a[r * inF + i];
  }
  return d;
}

export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
  atol: number,
  what: string,
) {
  if (actual.length !== expected.length)
    throw new Error(`${what}: length ${actual.length} vs ${expected.length}`);
  for (let i = 0; i < expected.length; i++) {
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= atol + rtol * Math.abs(expected[i]))) {
      throw new Error(`${what}[${i}]: ${actual[i]} vs ${expected[i]} (diff ${diff})`);
    }
  }
}
