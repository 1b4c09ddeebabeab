// mergekit `nearswap` (nearswap_merge): takes the other model's value where it is within t of the base,
// interpolating by w = clamp(t / max(|base − x|, 1e-6), 0, 1).
import { MergePlanError } from '../errors.ts';
import type { TensorMergeMethod } from '../method.ts';

export function nearswapVectors(t: number, base: Float32Array, other: Float32Array): Float32Array {
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const w = Math.min(1, Math.max(0, t / Math.max(Math.abs(base[i] - other[i]), 1e-6)));
    out[i] = w * other[i] + (1 - w) * base[i];
  }
  return out;
}

export const nearswap: TensorMergeMethod = {
  kind: 'tensor',
  name: 'nearswap',
  description:
    'Takes the other model’s parameters where they are close to the base (within t), the base elsewhere.',
  paper: 'https://huggingface.co/alchemonaut/QuartetAnemoi-70B-t0.0001',
  baseModel: 'required',
  random: false,
  minModels: 1,
  maxModels: 1,
  parameters: [
    {
      name: 't',
      scope: 'global',
      type: 'number',
      required: true,
      range: { min: 0, minExclusive: true },
      description:
        'Similarity threshold: differences up to t are taken whole, larger ones by t/|difference|.',
    },
  ],
  notes:
    'The interpolation weight is computed in float64 and the result rounded once (mergekit: float32). As in ' +
    "mergekit's current code silently returns the base for t <= 0; lorafuse refuses it (as its older NearSwapTask did).",
  mergeTensor(ctx) {
    const base = ctx.inputs.find((input) => input.isBase);
    const others = ctx.inputs.filter((input) => !input.isBase);
    if (base && others.length === 0) return Float32Array.from(base.data);
    if (!base || others.length !== 1) {
      throw new MergePlanError('method_inputs', 'nearswap needs the base model and exactly one other model', {
        tensor: ctx.tensorName,
      });
    }
    return nearswapVectors(Number(ctx.params.t), base.data, others[0].data);
  },
};
